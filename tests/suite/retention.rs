//! Files over time through the service: the stored-bytes quota on the host's inventory, and
//! owners sealed into file IDs reaching the access policy.

use std::sync::Arc;

use jid::{BareJid, Jid};
use minidom::Element;
use time::Duration;
use xmpp_upload::service::{
    AccessPolicy, FileInfo, Inventory, MemoryInventory, Outcome, QuotaExceeded, QuotaScope,
    RetentionPolicy, StoredFile,
};
use xmpp_upload::{SlotError, SlotService};

use super::common::*;

fn slot_request(id: &str, from: &str, size: u64) -> Element {
    parse(&format!(
        "<iq type='get' id='{id}' from='{from}' to='upload.montague.tld'>\
         <request xmlns='urn:xmpp:http:upload:0' filename='{id}.bin' size='{size}'/></iq>"
    ))
}

#[test]
fn stored_bytes_quota_counts_recorded_uploads_and_says_when_to_retry() {
    let inventory = Arc::new(MemoryInventory::new());
    let svc = SlotService::new(
        config()
            .stored_quota(10_000)
            .min_charge(1)
            .inventory(inventory.clone())
            .retention(RetentionPolicy::new().max_age(Duration::days(7))),
        store(),
    );
    let romeo: BareJid = "romeo@montague.tld".parse().unwrap();
    // Nothing stored yet: 6000 bytes fit.
    let a = svc.process(&slot_request("a", "romeo@montague.tld/x", 6000), now());
    let Outcome::Issued(info) = a.outcome else {
        panic!("{:?}", a.outcome)
    };
    // The upload completes: the host records it from the verified PUT.
    inventory
        .record(StoredFile::new(romeo.clone(), info.object_key, 6000, now()))
        .unwrap();
    // 5000 more would make 11000 > 10000: refused, retry when the first file ages out.
    let b = svc.process(&slot_request("b", "romeo@montague.tld/x", 5000), now());
    assert_eq!(
        b.outcome,
        Outcome::Refused {
            requester: Some("romeo@montague.tld/x".parse().unwrap()),
            protocol: Some(xmpp_upload::service::Protocol::Upload(
                xmpp_upload::stanza::Dialect::V0
            )),
            error: SlotError::QuotaExceeded(QuotaExceeded::new(
                QuotaScope::Stored,
                Some(now() + Duration::days(7))
            )),
        }
    );
    let reply = b.reply.unwrap();
    assert_eq!(
        error_of(&reply),
        ("wait".to_owned(), "resource-constraint".to_owned())
    );
    assert_eq!(
        error_payload(&reply).unwrap().attr("stamp"),
        Some("2017-12-10T23:42:05Z")
    );
    // 4000 still fit; another user is not affected.
    let c = svc.handle(&slot_request("c", "romeo@montague.tld/x", 4000), now());
    assert_eq!(c.unwrap().attr("type"), Some("result"));
    let d = svc.handle(&slot_request("d", "juliet@montague.tld/y", 9000), now());
    assert_eq!(d.unwrap().attr("type"), Some("result"));
    // More than the quota itself: refused with no retry time.
    let e = svc.process(&slot_request("e", "juliet@montague.tld/y", 10_001), now());
    assert!(matches!(
        e.outcome,
        Outcome::Refused {
            error: SlotError::QuotaExceeded(QuotaExceeded {
                scope: QuotaScope::Stored,
                retry_at: None,
                ..
            }),
            ..
        }
    ));
    // Once deleted (retention), the bytes are free again.
    let first = inventory.files_of(&romeo).unwrap().remove(0);
    inventory.remove(&first.key).unwrap();
    let f = svc.handle(&slot_request("f", "romeo@montague.tld/x", 5000), now());
    assert_eq!(f.unwrap().attr("type"), Some("result"));
}

/// Downloads only for the uploader (a host would add their roster or a room's occupants).
#[derive(Debug)]
struct OwnerOnly;

impl AccessPolicy for OwnerOnly {
    fn may_upload(&self, requester: &Jid) -> bool {
        requester.domain().as_str() == "montague.tld"
    }
    fn may_download(&self, requester: &Jid, file: &FileInfo<'_>) -> bool {
        requester.to_bare() == *file.owner
    }
}

#[test]
fn owner_only_policy_refuses_another_users_p1_download() {
    let svc = SlotService::new(config().access_policy(OwnerOnly), store());
    let up = parse(
        "<iq type='set' id='u1' from='romeo@montague.tld/orchard' to='upload.montague.tld'>\
         <query xmlns='p1:http-file-transfer' md5='qN48INKsmQyPMZkHs0DWog==' size='5' name='x.txt'/></iq>",
    );
    let reply = svc.handle(&up, now()).unwrap();
    let fileid = reply
        .children()
        .next()
        .and_then(|q| q.attr("fileid"))
        .unwrap()
        .to_owned();
    let down = |from: &str| {
        parse(&format!(
            "<iq type='get' id='d1' from='{from}' to='upload.montague.tld'>\
             <query xmlns='p1:http-file-transfer' fileid='{fileid}'/></iq>"
        ))
    };
    let other = svc.process(&down("juliet@montague.tld/balcony"), now());
    assert_eq!(
        error_of(other.reply.as_ref().unwrap()),
        ("auth".to_owned(), "forbidden".to_owned())
    );
    assert!(matches!(
        other.outcome,
        Outcome::Refused {
            error: SlotError::Forbidden,
            ..
        }
    ));
    // The uploader, from another device, gets a URL.
    let own = svc.process(&down("romeo@montague.tld/phone"), now());
    assert!(matches!(own.outcome, Outcome::Resolved { .. }), "{own:?}");
    // The owner cannot be read out of the ID.
    assert!(!fileid.contains("romeo"));
}

#[test]
fn the_verified_put_names_the_uploader_for_the_inventory() {
    let svc = service();
    let req = xmpp_upload::stanza::upload::SlotRequest::new("a.txt", 5);
    let issued = svc
        .request_slot(
            &"romeo@montague.tld/orchard".parse().unwrap(),
            &req,
            "o1",
            now(),
        )
        .unwrap();
    let put = svc
        .storage()
        .verify_put(&issued.slot.put, 5, None, now())
        .unwrap();
    assert_eq!(put.owner(), Some("romeo@montague.tld".parse().unwrap()));
    assert_eq!(put.owner_str(), Some("romeo@montague.tld"));
    // The owner is signed: naming another uploader breaks the URL.
    let forged = issued
        .slot
        .put
        .as_str()
        .replace("by=romeo@montague.tld", "by=juliet@capulet.tld");
    assert_ne!(forged, issued.slot.put.as_str(), "the owner is in the URL");
    assert!(svc
        .storage()
        .verify_put(&forged.parse().unwrap(), 5, None, now())
        .is_err());
    // Recorded from the verified PUT, with the verifier's size and key.
    let inventory = MemoryInventory::new();
    inventory
        .record(StoredFile::new(
            put.owner().unwrap(),
            put.key.to_string(),
            put.size,
            now(),
        ))
        .unwrap();
    assert_eq!(
        inventory
            .stored_bytes(&"romeo@montague.tld".parse().unwrap())
            .unwrap(),
        5
    );
}
