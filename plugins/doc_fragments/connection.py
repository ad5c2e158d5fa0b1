# Copyright (c) natsops.jetstream contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    # The connection options shared by every module (plugins/module_utils/core/connection.py).
    DOCUMENTATION = r"""
options:
  servers:
    description:
      - NATS server URLs to connect to, for example V(nats://10.0.0.1:4222). Any server of a cluster will do.
      - If not set, the E(NATS_URL) environment variable is used (comma-separated), then the O(context),
        then V(nats://127.0.0.1:4222).
    type: list
    elements: str
  context:
    description:
      - Name of a natscli context (C(nats context save NAME)), read from
        C(~/.config/nats/context/NAME.json) (or under E(XDG_CONFIG_HOME)) on the host that runs the module.
      - "The context fills in only the options that are not set on the task: URL, user, password, token,
        creds, nkey, TLS files and JetStream domain."
      - If not set, the E(NATS_CONTEXT) environment variable is used.
    type: str
  user:
    description:
      - User name for user/password authentication. Falls back to E(NATS_USER).
    type: str
  password:
    description:
      - Password for O(user). Falls back to E(NATS_PASSWORD). Never logged.
    type: str
  token:
    description:
      - Authentication token. Falls back to E(NATS_TOKEN). Never logged.
    type: str
  creds:
    description:
      - Path to a credentials file (user JWT and nkey seed), as issued by C(nsc). Falls back to E(NATS_CREDS).
    type: path
  nkey:
    description:
      - Path to a file holding a user nkey seed. Falls back to E(NATS_NKEY).
    type: path
  tls_ca:
    description:
      - Path to the CA certificate(s) that signed the server's certificate. Falls back to E(NATS_CA).
      - Setting any TLS option, or a V(tls://) URL, makes the connection use TLS, and B(requires) it. A server
        that offers no TLS is refused before anything, credentials included, is sent to it (as the Go client's
        secure option does). A server that offers TLS without requiring it is connected to with TLS.
    type: path
  tls_cert:
    description:
      - Path to a client certificate, for servers that verify clients. Needs O(tls_key). Falls back to E(NATS_CERT).
    type: path
  tls_key:
    description:
      - Path to the private key of O(tls_cert). Falls back to E(NATS_KEY).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for the connection to a server to be made.
    type: float
    default: 5.0
  timeout:
    description:
      - Seconds to wait for an answer to a JetStream API request, and for the next piece of data during a
        backup or restore. A backup or restore as a whole may take much longer.
    type: float
    default: 10.0
  domain:
    description:
      - JetStream domain to address (API subjects C($JS.<domain>.API)), for leaf nodes and super-clusters
        with domains.
    type: str
requirements:
  - "nats-py >= 2.6 (C(pip install nats-py)), on the host that runs the module; usually the controller,
    with C(delegate_to: localhost)."
notes:
  - "The module talks to NATS over the network, from the host that runs it. Run it where nats-py is installed
    and the NATS servers are reachable, usually with C(delegate_to: localhost) and C(run_once: true)."
  - Connection options can be set once for a play with C(module_defaults) and the action group
    C(group/natsops.jetstream.nats).
"""
