//! Arbitrary strings → `AesGcmUrl` (feature `aesgcm`): whatever parses writes back a link
//! that parses to the same value and the same text; `https_url` has no fragment; `Debug`
//! shows no key (unless the URL itself spells it).
#![no_main]
use libfuzzer_sys::fuzz_target;
use xmpp_upload::aesgcm::AesGcmUrl;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(link) = text.parse::<AesGcmUrl>() else {
        return;
    };
    let shown = link.to_string();
    let again: AesGcmUrl = shown.parse().expect("a written link parses");
    assert_eq!(again, link);
    assert_eq!(again.to_string(), shown);
    let https = link.https_url();
    assert_eq!(https.scheme(), "https");
    assert_eq!(https.fragment(), None);
    let rebuilt = AesGcmUrl::with_iv(&https, *link.key(), *link.iv()).expect("its own GET URL");
    assert_eq!(rebuilt, link);
    let key_hex: String = link.key().iter().map(|b| format!("{b:02x}")).collect();
    // (Unless the URL itself spells the key, which an input can arrange.)
    if !https.as_str().contains(&key_hex) {
        assert!(!format!("{link:?}").contains(&key_hex));
    }
});
