//! Arbitrary text → `ListPage::parse`, the hand-written reader of S3 ListObjectsV2 answers
//! (bounded work, no recursion): it must never panic, and what it accepts must hold together.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xmpp_upload::storage::s3::ListPage;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(page) = ListPage::parse(&text) {
        // A page lists at most what its body could spell out.
        assert!(page.objects.len() <= text.len() / "<Contents></Contents>".len());
        for object in &page.objects {
            assert!(object.key.len() <= text.len());
        }
    }
});
