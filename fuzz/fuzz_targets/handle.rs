//! Arbitrary bytes → XML → `SlotService::handle` (two policies) and every stanza parser.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xmpp_upload_fuzz::{now, parse_all, service, stable_service};

fuzz_target!(|data: &[u8]| {
    let Ok(el) = String::from_utf8_lossy(data).parse::<minidom::Element>() else {
        return;
    };
    for service in [service(), stable_service()] {
        if let Some(reply) = service.handle(&el, now()) {
            reply.children().for_each(parse_all);
        }
    }
    parse_all(&el);
    el.children().take(1).for_each(parse_all);
});
