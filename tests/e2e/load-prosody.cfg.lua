-- Prosody 0.12 for ci/load.sh: loopback only, no TLS, no s2s. c2s for the load driver's clients
-- (plain passwords so the script can write the accounts itself), a component port for our
-- component (upload.localhost), and Prosody's own XEP-0363 service (mod_http_file_share on
-- share.localhost) as the reference it is measured against, with quotas out of the way. Logs at
-- warning. The script fills in the @…@ values.
run_as_root = true
pidfile = "@RUN@/prosody/prosody.pid"
data_path = "@RUN@/prosody/data"
log = { { levels = { min = "warn" }, to = "console" } }
modules_enabled = { "saslauth"; "disco"; "ping" }
authentication = "internal_plain"
storage = "internal"
interfaces = { "127.0.0.1" }
c2s_ports = { @C2S_PORT@ }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { @COMPONENT_PORT@ }
component_interfaces = { "127.0.0.1" }
http_ports = { @HTTP_PORT@ }
http_interfaces = { "127.0.0.1" }
https_ports = { }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true

VirtualHost "localhost"

Component "upload.localhost"
  component_secret = "@COMPONENT_SECRET@"

Component "share.localhost" "http_file_share"
  http_host = "127.0.0.1"
  http_file_share_size_limit = 10*1024*1024
  http_file_share_daily_quota = 1024*1024*1024*1024
  http_file_share_global_quota = 1024*1024*1024*1024
