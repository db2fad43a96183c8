//! Writes the seed corpora `fuzz/seeds/{handle,verify,file_id}/` from `tests/fixtures/`.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --bin seeds` (stable is enough). Deterministic:
//! the same fixtures give the same files.
//!
//! * handle: each fixture (leading comments dropped, `jabber:client` added when the root has no
//!   namespace); each IQ get/set again from an allowed requester to the service; a few
//!   `jabber:component:accept` copies.
//! * verify: the PUT and GET URLs the two services issue for those requests (`URL\nsize\ntype`,
//!   with the request's size and type), download URLs, and a few near misses.
//! * file_id: the file IDs and stable GET links they issue.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use minidom::rxml::{Namespace, NcName};
use minidom::Element;
use xmpp_upload::stanza::file_transfer::{self, Query};
use xmpp_upload::stanza::upload::{Slot, SlotRequest};
use xmpp_upload_fuzz::{
    now, service, split_verify_input, stable_service, store, REQUESTER, REQUESTER_JID, SERVICE_JID,
    STABLE,
};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn main() -> Res<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = root.join("seeds");
    for t in ["handle", "verify", "file_id"] {
        let d = out.join(t);
        if d.exists() {
            fs::remove_dir_all(&d)?;
        }
        fs::create_dir_all(&d)?;
    }

    let mut fixtures = Vec::new();
    collect(&root.join("../tests/fixtures"), &mut fixtures)?;
    fixtures.sort();

    let mut verify = BTreeSet::new();
    let mut file_ids = BTreeSet::new();
    let mut n_handle = 0;
    for path in &fixtures {
        let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("x");
        let xml = with_default_ns(strip_comments(&fs::read_to_string(path)?));
        fs::write(out.join("handle").join(format!("{stem}.xml")), &xml)?;
        n_handle += 1;
        let el: Element = xml.parse()?;
        if el.name() != "iq" || !matches!(el.attr("type"), Some("get" | "set")) {
            continue;
        }
        let el = addressed(&el);
        let text = to_string(&el)?;
        fs::write(out.join("handle").join(format!("{stem}-from.xml")), &text)?;
        n_handle += 1;
        if stem.starts_with("xep0363-1.2.0-ex05") || stem.starts_with("p1-v2-ex03") {
            let comp = text.replacen("jabber:client", "jabber:component:accept", 1);
            fs::write(
                out.join("handle").join(format!("{stem}-component.xml")),
                comp,
            )?;
            n_handle += 1;
        }
        // A p1 upload without a size is refused under a quota: add one.
        let el = match el.children().next() {
            Some(q)
                if q.name() == "query" && q.attr("md5").is_some() && q.attr("size").is_none() =>
            {
                let mut sized = el.clone();
                if let (Some(q), Ok(n)) = (sized.children_mut().next(), NcName::try_from("size")) {
                    q.set_attr(Namespace::NONE, n, "23456".to_owned());
                }
                fs::write(
                    out.join("handle").join(format!("{stem}-sized.xml")),
                    to_string(&sized)?,
                )?;
                n_handle += 1;
                sized
            }
            _ => el,
        };
        // What the services issue for it: URLs for `verify`, IDs and links for `file_id`.
        let payload = el.children().next();
        let req = payload.and_then(|p| SlotRequest::parse(p).ok());
        let p1 = payload.and_then(|p| match Query::parse(p) {
            Ok(Query::UploadRequest(r)) => Some(r),
            _ => None,
        });
        let (size, ty) = match (&req, &p1) {
            (Some(r), _) => (Some(r.size), r.content_type.clone()),
            (_, Some(r)) => (r.size, r.content_type.clone()),
            _ => (None, None),
        };
        let ty = ty.filter(|t| !t.is_empty());
        // Fresh services per request: quotas must not refuse later fixtures.
        for s in [&service(), &stable_service()] {
            let Some(reply) = s.handle(&el, now()) else {
                continue;
            };
            let Some(child) = reply.children().next() else {
                continue;
            };
            let (put, get, fid) = if let Ok(slot) = Slot::parse(child) {
                (slot.put, Some(slot.get), None)
            } else if let Ok(Query::UploadResult(r)) = file_transfer::Query::parse(child) {
                (r.upload, r.download, r.fileid)
            } else {
                continue;
            };
            let size = size.unwrap_or(20 << 20);
            let ty_line = ty.as_deref().map(|t| format!("\n{t}")).unwrap_or_default();
            verify.insert(format!("{put}\n{size}{ty_line}"));
            if let Some(get) = get {
                if get.as_str().starts_with(xmpp_upload_fuzz::STABLE_BASE) {
                    file_ids.insert(get.to_string());
                    if let Some(id) = get.path_segments().and_then(|mut p| p.nth(1)) {
                        file_ids.insert(id.to_owned());
                    }
                } else {
                    verify.insert(format!("{get}\n0\n"));
                }
            }
            if let Some(fid) = fid {
                if let Ok(u) = s.download_url(&REQUESTER_JID, &fid, now()) {
                    verify.insert(format!("{u}\n0"));
                }
                file_ids.insert(fid);
            }
        }
    }
    // Near misses the fuzzer would take long to find: a bit off each binding.
    let some_put = verify.iter().find(|v| v.contains("v=1&size=")).cloned();
    if let Some(v) = some_put {
        verify.insert(v.replacen("v=1&", "v=1&v=1&", 1));
        verify.insert(v.replacen("/up/", "/up/%2e%2e/", 1));
        verify.insert(v.replacen("&exp=", "&exp=0", 1));
    }
    verify.insert("https://files.montague.tld/up/00000000000000000000000000000000/a?v=1&size=1&exp=99999999999999999999&sig=AAAA\n1".into());

    // How many seeds are genuine (so mutations start from accepted inputs).
    let (mut put_ok, mut get_ok, mut id_ok) = (0, 0, 0);
    for (i, v) in verify.iter().enumerate() {
        fs::write(out.join("verify").join(format!("{i:03}.txt")), v)?;
        let (url, len, ty) = split_verify_input(v);
        if let Ok(url) = url::Url::parse(url) {
            put_ok += usize::from(store().verify_put(&url, len, ty, now()).is_ok());
            get_ok += usize::from(store().verify_get(&url, now()).is_ok());
        }
    }
    for (i, v) in file_ids.iter().enumerate() {
        fs::write(out.join("file_id").join(format!("{i:03}.txt")), v)?;
        let ok = match url::Url::parse(v) {
            Ok(u) => STABLE.resolve_stable_get(&u, now()).is_ok(),
            Err(_) => STABLE.download_url(&REQUESTER_JID, v, now()).is_ok(),
        };
        id_ok += usize::from(ok);
    }
    println!(
        "seeds: handle {n_handle}; verify {} ({put_ok} PUT and {get_ok} GET accepted); file_id {} ({id_ok} resolve)",
        verify.len(),
        file_ids.len()
    );
    Ok(())
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Res<()> {
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            collect(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "xml") {
            out.push(p);
        }
    }
    Ok(())
}

fn strip_comments(text: &str) -> &str {
    let mut body = text.trim_start();
    while let Some(rest) = body.strip_prefix("<!--") {
        body = rest
            .split_once("-->")
            .map(|(_, r)| r.trim_start())
            .unwrap_or_default();
    }
    body
}

/// Adds `xmlns='jabber:client'` to a root without a namespace (the stream declares it).
fn with_default_ns(xml: &str) -> String {
    let end = xml.find('>').unwrap_or(xml.len());
    let head = &xml[..end];
    if head.contains("xmlns=") {
        return xml.to_owned();
    }
    let name_end = head
        .find(|c: char| c.is_whitespace() || c == '/')
        .unwrap_or(end);
    format!(
        "{} xmlns='jabber:client'{}",
        &xml[..name_end],
        &xml[name_end..]
    )
}

/// A copy from the allowed requester to the service.
fn addressed(el: &Element) -> Element {
    let mut e = el.clone();
    for (name, value) in [("from", REQUESTER), ("to", SERVICE_JID)] {
        if let Ok(n) = NcName::try_from(name) {
            e.attrs_mut().remove(&Namespace::NONE, &n);
            e.set_attr(Namespace::NONE, n, value.to_owned());
        }
    }
    e
}

fn to_string(e: &Element) -> Res<String> {
    let mut buf = Vec::new();
    e.write_to(&mut buf)?;
    Ok(String::from_utf8(buf)?)
}
