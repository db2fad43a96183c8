//! Empty: the package exists for its `send_file` example (`../send_file.rs`).
