//! The `{slot id}.owner` sidecar is written the way the store writes everything else
//! (issue 20, point 10): a symlink planted at its name is replaced, never written through.

use std::sync::Arc;

use xmpp_upload::service::RetentionPolicy;
use xmpp_upload_component::metrics::Metrics;
use xmpp_upload_component::retention::{Objects, Records, Retention};

#[test]
fn a_planted_owner_symlink_is_not_followed() {
    let root = std::env::temp_dir().join(format!("owner-sidecar-{}", std::process::id()));
    let store = root.join("store");
    let outside = root.join("outside");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let victim = outside.join("victim");
    std::fs::write(&victim, b"keep me").unwrap();

    let id = "0123456789abcdef0123456789abcdef";
    std::fs::create_dir_all(store.join(id)).unwrap();
    std::fs::write(store.join(id).join("a.txt"), b"abc").unwrap();
    let owner_file = store.join(format!("{id}.owner"));
    std::os::unix::fs::symlink(&victim, &owner_file).unwrap();

    let records = Records::memory();
    let retention = Retention {
        pending: records.pending(),
        records,
        objects: Objects::Local(store.clone()),
        policy: RetentionPolicy::new(),
        metrics: Arc::new(Metrics::default()),
        fallback_owner: "upload.example.org".parse().unwrap(),
        put_ttl: time::Duration::seconds(300),
        orphan_grace: time::Duration::days(1),
        started: time::OffsetDateTime::now_utc(),
    };
    retention.stored_local(&format!("{id}/a.txt"), 3, Some("text/plain"), None);

    assert_eq!(
        std::fs::read(&victim).unwrap(),
        b"keep me",
        "written through the symlink"
    );
    let m = std::fs::symlink_metadata(&owner_file).unwrap();
    assert!(m.file_type().is_file(), "the sidecar is still a symlink");
    assert_eq!(
        std::fs::read_to_string(&owner_file).unwrap(),
        "upload.example.org"
    );
    // No temporary file is left behind.
    let left: Vec<_> = std::fs::read_dir(store.join(".tmp")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir_all(&root).unwrap();
}
