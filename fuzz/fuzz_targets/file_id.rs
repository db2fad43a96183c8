//! Arbitrary strings → file-ID resolution: `download_url`, and `resolve_stable_get` on the
//! string as a URL and as the ID segment of a stable link.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xmpp_upload_fuzz::{now, stable_link, REQUESTER_JID, STABLE};

fuzz_target!(|data: &[u8]| {
    let id = String::from_utf8_lossy(data);
    let _ = STABLE.download_url(&REQUESTER_JID, &id, now());
    if let Ok(url) = url::Url::parse(&id) {
        let _ = STABLE.resolve_stable_get(&url, now());
    }
    let _ = STABLE.resolve_stable_get(&stable_link(&id), now());
});
