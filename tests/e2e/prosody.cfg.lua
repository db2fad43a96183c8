-- Prosody 0.12 for ci/e2e.sh: loopback only, no TLS, no s2s. ci/e2e.sh fills in the @…@ values
-- (a fresh run directory and free ports) and writes the result next to Prosody's data.
run_as_root = true
pidfile = "@RUN@/prosody.pid"
data_path = "@RUN@/data"
certificates = "@RUN@"
log = { { levels = { min = "info" }, to = "console" } }
modules_enabled = { "roster"; "saslauth"; "disco"; "ping" }
authentication = "internal_hashed"
storage = "internal"
interfaces = { "127.0.0.1" }
c2s_ports = { @C2S_PORT@ }
s2s_ports = { }
component_ports = { @COMPONENT_PORT@ }
component_interfaces = { "127.0.0.1" }
http_ports = { @HTTP_PORT@ }
http_interfaces = { "127.0.0.1" }
https_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
http_external_url = "http://127.0.0.1:@HTTP_PORT@/"

VirtualHost "localhost"
  -- Prosody 0.12 also lists subdomain components by itself; clients then see the entry twice.
  disco_items = { { "upload.localhost", "xmpp-upload component under test" } }

-- XEP-0114: xmpp-upload-component connects here.
Component "upload.localhost"
  component_secret = "@COMPONENT_SECRET@"

-- Prosody's own XEP-0363 service on the same server: the reference for answers and speed.
Component "share.localhost" "http_file_share"
  http_file_share_size_limit = @MAX_FILE_SIZE@
  http_host = "127.0.0.1"
