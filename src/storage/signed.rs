//! HMAC-signed URLs for your own HTTP endpoint.
