//! Arbitrary bytes → XML → the client-side readers: `FileSharing`, `Sources`,
//! `FileMetadata`, `EncryptedSource`, `Fallback`, and `share::classify` on a `Message`;
//! whatever parses is written back and read again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use minidom::Element;
use xmpp_upload::share;
use xmpp_upload::stanza::esfs::EncryptedSource;
use xmpp_upload::stanza::fallback::Fallback;
use xmpp_upload::stanza::file_metadata::FileMetadata;
use xmpp_upload::stanza::sfs::{FileSharing, Sources};
use xmpp_upload::xmpp_parsers::message::Message;

fn all(el: &Element) {
    if let Ok(s) = FileSharing::try_from(el) {
        let _ = s.urls();
        let _ = FileSharing::try_from(&Element::from(&s));
    }
    if let Ok(s) = Sources::try_from(el) {
        let _ = Sources::try_from(&Element::from(&s));
    }
    if let Ok(m) = FileMetadata::try_from(el) {
        let _ = m.parsed_date();
        let _ = FileMetadata::try_from(&Element::from(&m));
    }
    if let Ok(e) = EncryptedSource::try_from(el) {
        let _ = EncryptedSource::try_from(&Element::from(&e));
    }
    let _ = Fallback::try_from(el);
}

fuzz_target!(|data: &[u8]| {
    let Ok(el) = String::from_utf8_lossy(data).parse::<Element>() else {
        return;
    };
    all(&el);
    el.children().take(4).for_each(all);
    if let Ok(m) = Message::try_from(el) {
        let _ = share::classify(&m);
        let _ = share::is_sfs_fallback(&m);
        let _ = share::AttachTarget::chat(&m);
        let _ = share::AttachTarget::groupchat(&m);
    }
});
