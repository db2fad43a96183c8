//! Arbitrary `URL \n Content-Length \n Content-Type` → `SignedUrlStore::verify_put` / `verify_get`.
//! (`ExternalStore` and `S3Store` issue URLs for other servers and have no verifier.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use xmpp_upload_fuzz::{now, split_verify_input, store};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (url, len, ty) = split_verify_input(&text);
    let Ok(url) = url::Url::parse(url) else {
        return;
    };
    if let Ok(put) = store().verify_put(&url, len, ty, now()) {
        // Borrowed or owned, the same value; the key ends with the file name.
        assert_eq!(put.clone().into_owned(), put);
        assert!(put.key.ends_with(&*put.filename));
        let _ = put.check_content_md5(ty);
        let mut body = put.body_check();
        let _ = body.update(data).and_then(|()| body.finish());
    }
    let _ = store().verify_get(&url, now());
});
