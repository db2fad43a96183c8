-- Prosody 0.12 for ci/clients_e2e.sh: loopback only, no s2s. STARTTLS is offered with a
-- self-signed certificate for localhost (go-sendxmpp, profanity and xmpp.js insist on it) but not
-- required. The only upload service is our component on upload.localhost: no http_file_share
-- here, so a client cannot fall back to Prosody's own. The script fills in the @…@ values.
run_as_root = true
pidfile = "@RUN@/prosody/prosody.pid"
data_path = "@RUN@/prosody/data"
certificates = "@RUN@/certs"
log = { { levels = { min = "debug" }, to = "console" } }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "offline" }
authentication = "internal_hashed"
storage = "internal"
interfaces = { "127.0.0.1" }
c2s_ports = { @C2S_PORT@ }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { @COMPONENT_PORT@ }
component_interfaces = { "127.0.0.1" }
http_ports = { }
https_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
ssl = { certificate = "@RUN@/certs/localhost.crt"; key = "@RUN@/certs/localhost.key" }

-- Prosody lists upload.localhost in disco#items by itself (a subdomain component).
VirtualHost "localhost"
  ssl = { certificate = "@RUN@/certs/localhost.crt"; key = "@RUN@/certs/localhost.key" }

-- XEP-0114: xmpp-upload-component connects here.
Component "upload.localhost"
  component_secret = "@COMPONENT_SECRET@"
