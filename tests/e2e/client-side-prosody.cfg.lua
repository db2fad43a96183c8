-- Prosody 0.12 for ci/client_side.sh: loopback only, no s2s, users alice and bob, and Prosody's
-- OWN upload service, mod_http_file_share, on share.localhost over HTTPS (a certificate for
-- localhost signed by the run's test CA). STARTTLS is offered (profanity insists on it), not
-- required: the example client logs in over plain TCP. The script fills in the @…@ values.
run_as_root = true
pidfile = "@RUN@/prosody/prosody.pid"
data_path = "@RUN@/prosody/data"
certificates = "@RUN@/certs"
log = { { levels = { min = "info" }, to = "console" } }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "offline"; "http" }
authentication = "internal_hashed"
storage = "internal"
interfaces = { "127.0.0.1" }
c2s_ports = { @C2S_PORT@ }
c2s_direct_tls_ports = { }
s2s_ports = { }
component_ports = { }
http_ports = { }
http_interfaces = { "127.0.0.1" }
https_ports = { @HTTPS_PORT@ }
https_interfaces = { "127.0.0.1" }
https_ssl = { certificate = "@RUN@/certs/localhost.crt"; key = "@RUN@/certs/localhost.key" }
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
ssl = { certificate = "@RUN@/certs/localhost.crt"; key = "@RUN@/certs/localhost.key" }

VirtualHost "localhost"
  ssl = { certificate = "@RUN@/certs/localhost.crt"; key = "@RUN@/certs/localhost.key" }

-- Prosody's own XEP-0363 service (listed in localhost's disco#items as a subdomain component).
Component "share.localhost" "http_file_share"
  http_host = "localhost"
  http_external_url = "https://localhost:@HTTPS_PORT@/"
  http_file_share_size_limit = @MAX_FILE_SIZE@
  http_file_share_daily_quota = @DAILY_QUOTA@
