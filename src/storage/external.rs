//! External upload servers speaking the `mod_http_upload_external` protocol.
