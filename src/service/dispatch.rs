//! The stanza entry points ([`SlotService::handle`], [`SlotService::process`],
//! [`SlotService::begin`]): parsing the IQ, bounding the payload, and routing it to the
//! upload, file-transfer, disco or refusal path; each reply mirrors the request's dialect
//! and stanza namespace.

use jid::Jid;
use minidom::Element;
use time::OffsetDateTime;
use xmpp_parsers::stanza_error::{DefinedCondition, ErrorType};

use super::upload::{ephemeral_cap, Ask, Checked};
use super::{Answer, Begin, Outcome, PendingCharge, Protocol, SlotError, SlotService};
use crate::ns;
use crate::stanza::error as stanza_error;
use crate::stanza::file_transfer::{self, DownloadResult, UploadResult};
use crate::stanza::iq::{Iq, IqType};
use crate::stanza::upload::SlotRequest;
use crate::stanza::{Dialect, ParseError};
use crate::storage::StorageBackend;

/// The deepest upload payload accepted, in element levels below the IQ. The deepest
/// legitimate payload (a legacy request's `<filename/>` text) has 2; anything deeper is
/// refused with `bad-request` before it is parsed, and is never echoed.
pub const MAX_PAYLOAD_DEPTH: usize = 8;

/// The most elements an upload payload may hold (a request has at most a handful).
pub const MAX_PAYLOAD_ELEMENTS: usize = 64;

impl<S: StorageBackend> SlotService<S> {
    /// Answers a stanza addressed to the upload service: an XEP-0363 slot request in any
    /// dialect, a `p1:http-file-transfer` query, or a disco#info/#items query, in
    /// `jabber:client` or `jabber:component:accept`. The reply keeps the `id`, swaps
    /// `from`/`to` and mirrors the request's dialect and stanza namespace. Quotas are charged
    /// on the configured [`QuotaLedger`](super::QuotaLedger).
    ///
    /// `None`: not a stanza this service handles (messages, presences, IQ results and
    /// errors, other payloads); the host routes it elsewhere.
    #[must_use]
    pub fn handle(&self, stanza: &Element, now: OffsetDateTime) -> Option<Element> {
        self.process(stanza, now).reply
    }

    /// [`SlotService::handle`], also saying what happened ([`Outcome`]) for the host's logs.
    pub fn process(&self, stanza: &Element, now: OffsetDateTime) -> Answer {
        match self.begin(stanza, now) {
            Begin::Done(answer) => answer,
            Begin::Charge(pending) => {
                let result = self.charge(pending.charge());
                pending.complete(result)
            }
        }
    }

    /// The first step of the two-phase path: runs every check and issues the URLs. A slot
    /// that needs a quota charge comes back as [`Begin::Charge`]: the host charges its own
    /// store (the configured [`QuotaLedger`](super::QuotaLedger) is not used) and calls
    /// [`PendingCharge::complete`]. Everything else is answered at once.
    pub fn begin(&self, stanza: &Element, now: OffsetDateTime) -> Begin {
        let iq = match Iq::parse(stanza) {
            None => return Begin::Done(Answer::new(None, Outcome::NotForThisService)),
            Some(Ok(iq)) => iq,
            Some(Err(e)) => {
                // An IQ with a missing or unknown type cannot be a result or error (those are
                // never answered): RFC 6120 §8.2.3 wants bad-request.
                let echo = Iq {
                    ns: stanza_ns(stanza),
                    id: stanza.attr("id"),
                    type_: IqType::Error,
                    from: stanza.attr("from"),
                    to: stanza.attr("to"),
                    payload: None,
                };
                return Begin::Done(self.refuse(&echo, None, None, SlotError::Malformed(e)));
            }
        };
        if matches!(iq.type_, IqType::Result | IqType::Error) {
            return Begin::Done(Answer::new(None, Outcome::NotForThisService));
        }
        let Some(payload) = iq.payload else {
            let e = SlotError::Malformed(ParseError::MissingChild("payload"));
            return Begin::Done(self.refuse(&iq, None, None, e));
        };
        let payload_ns = payload.ns();
        let upload = Dialect::from_namespace(&payload_ns).filter(|_| payload.name() == "request");
        let file_transfer =
            payload.name() == "query" && file_transfer::is_file_transfer_ns(&payload_ns);
        if upload.is_none() && !file_transfer {
            return Begin::Done(self.other(&iq, payload));
        }
        // Upload payloads from here on: bounded before anything looks inside.
        if too_complex(payload) {
            return Begin::Done(self.refuse(&iq, None, None, SlotError::PayloadTooComplex));
        }
        let echo = Echo {
            payload,
            dialect: upload.map_or(Dialect::V0, Dialect::answer),
        };
        if iq.id.is_none() {
            let e = SlotError::Malformed(ParseError::MissingAttribute("id"));
            return Begin::Done(self.refuse(&iq, Some(&echo), None, e));
        }
        match upload {
            Some(dialect) => self.begin_upload(&iq, &echo, dialect, now),
            None => self.begin_file_transfer(&iq, &echo, now),
        }
    }

    /// Disco and anything else that is not an upload payload.
    fn other(&self, iq: &Iq<'_>, payload: &Element) -> Answer {
        let me = Some(self.jid_str.as_str());
        let wrong_type = |iq: &Iq<'_>| {
            self.refuse(
                iq,
                None,
                Some(Protocol::Discovery),
                SlotError::WrongIqType { expected: "get" },
            )
        };
        match (payload.name(), payload.ns().as_str()) {
            ("query", ns::DISCO_INFO) => match (iq.type_, payload.attr("node")) {
                (IqType::Get, None) => Answer::new(
                    Some(iq.result(me, Some(self.disco.clone()))),
                    Outcome::Discovery,
                ),
                (IqType::Get, Some(_)) => {
                    let err = stanza_error::plain(
                        ErrorType::Cancel,
                        DefinedCondition::ItemNotFound,
                        "no such node",
                    );
                    Answer::new(Some(iq.error(me, None, err)), Outcome::Discovery)
                }
                _ => wrong_type(iq),
            },
            ("query", ns::DISCO_ITEMS) => match iq.type_ {
                IqType::Get => Answer::new(
                    Some(iq.result(me, Some(Element::bare("query", ns::DISCO_ITEMS)))),
                    Outcome::Discovery,
                ),
                _ => wrong_type(iq),
            },
            _ => Answer::new(None, Outcome::NotForThisService),
        }
    }

    /// An error reply for `error`, echoing the payload (shallowly) when given.
    fn refuse(
        &self,
        iq: &Iq<'_>,
        echo: Option<&Echo<'_>>,
        protocol: Option<Protocol>,
        error: SlotError,
    ) -> Answer {
        let dialect = echo.map_or(Dialect::V0, |e| e.dialect);
        let reply = iq.error(
            Some(&self.jid_str),
            echo.map(|e| shallow_copy(e.payload)),
            error.to_stanza_error(dialect),
        );
        let requester = iq.from.and_then(|f| Jid::new(f).ok());
        Answer::new(
            Some(reply),
            Outcome::Refused {
                requester,
                protocol,
                error,
            },
        )
    }

    fn begin_upload(
        &self,
        iq: &Iq<'_>,
        echo: &Echo<'_>,
        dialect: Dialect,
        now: OffsetDateTime,
    ) -> Begin {
        let protocol = Protocol::Upload(dialect);
        let refuse = |e: SlotError| Begin::Done(self.refuse(iq, Some(echo), Some(protocol), e));
        if !self.config.dialects.contains(&dialect.answer()) {
            return refuse(SlotError::Disabled);
        }
        if iq.type_ != IqType::Get {
            return refuse(SlotError::WrongIqType { expected: "get" });
        }
        let req = match SlotRequest::parse(echo.payload) {
            Ok(r) => r,
            Err(e) => return refuse(e.into()),
        };
        let echo = Echo {
            payload: echo.payload,
            dialect: req.dialect.answer(),
        };
        let requester = match requester(iq) {
            Ok(r) => r,
            Err(e) => return Begin::Done(self.refuse(iq, Some(&echo), Some(protocol), e)),
        };
        let ask = Ask {
            requester: &requester,
            iq_id: iq.id.unwrap_or_default(),
            filename: &req.filename,
            size: Some(req.size),
            content_type: req.content_type.as_deref(),
            sha256: req.sha256(),
            md5: None,
            get_cap: ephemeral_cap(&req, now),
            protocol: Protocol::Upload(req.dialect),
        };
        match self.check_and_issue(&ask, now) {
            Ok(checked) => {
                let payload = checked.issued.slot.to_element(req.dialect.answer());
                self.pending(iq, &echo, payload, checked)
            }
            Err(e) => Begin::Done(self.refuse(iq, Some(&echo), Some(protocol), e)),
        }
    }

    fn begin_file_transfer(&self, iq: &Iq<'_>, echo: &Echo<'_>, now: OffsetDateTime) -> Begin {
        let query = file_transfer::Query::parse(echo.payload);
        let protocol = match (&query, iq.type_) {
            (Ok(file_transfer::Query::DownloadRequest(_)), _) => Protocol::FileTransferDownload,
            (Ok(file_transfer::Query::UploadRequest(_)), _) | (_, IqType::Set) => {
                Protocol::FileTransferUpload
            }
            _ => Protocol::FileTransferDownload,
        };
        let refuse = |e: SlotError| Begin::Done(self.refuse(iq, Some(echo), Some(protocol), e));
        if !self.config.file_transfer {
            return refuse(SlotError::Disabled);
        }
        let query = match query {
            Ok(q) => q,
            Err(e) => return refuse(e.into()),
        };
        let requester = match requester(iq) {
            Ok(r) => r,
            Err(e) => return refuse(e),
        };
        let me = Some(self.jid_str.as_str());
        match (iq.type_, query) {
            (IqType::Set, file_transfer::Query::UploadRequest(req)) => {
                let ask = Ask {
                    requester: &requester,
                    iq_id: iq.id.unwrap_or_default(),
                    filename: req.filename.as_deref().unwrap_or("file"),
                    size: req.size,
                    content_type: req.content_type.as_deref(),
                    sha256: None,
                    md5: Some(req.md5),
                    get_cap: None,
                    protocol,
                };
                match self.check_and_issue(&ask, now) {
                    Ok(checked) => {
                        let target = &checked.issued.target;
                        let fileid =
                            match self.file_id(&target.object_key, &requester.to_bare(), now) {
                                Ok(id) => id,
                                Err(e) => return refuse(e),
                            };
                        // Built in the request's namespace (p1:http-file-transfer or
                        // p1:s3filetransfer).
                        let result = UploadResult {
                            upload: target.put_url.clone(),
                            fileid: Some(fileid),
                            download: Some(checked.issued.slot.get.clone()),
                            headers: target
                                .required_headers
                                .iter()
                                .map(|h| file_transfer::HttpHeader {
                                    name: h.name.clone(),
                                    value: h.value.clone(),
                                })
                                .collect(),
                            namespace: req.namespace,
                        };
                        self.pending(iq, echo, Element::from(result), checked)
                    }
                    Err(e) => refuse(e),
                }
            }
            (IqType::Get, file_transfer::Query::DownloadRequest(req)) => {
                match self.resolve(&requester, &req.fileid, now) {
                    Ok((url, object_key)) => {
                        let payload = Element::from(DownloadResult {
                            download: url,
                            namespace: req.namespace,
                        });
                        Begin::Done(Answer::new(
                            Some(iq.result(me, Some(payload))),
                            Outcome::Resolved {
                                requester,
                                object_key,
                                protocol,
                            },
                        ))
                    }
                    Err(e) => refuse(e),
                }
            }
            (IqType::Get, file_transfer::Query::UploadRequest(_)) => {
                refuse(SlotError::WrongIqType { expected: "set" })
            }
            (IqType::Set, file_transfer::Query::DownloadRequest(_)) => {
                refuse(SlotError::WrongIqType { expected: "get" })
            }
            _ => refuse(SlotError::Malformed(ParseError::MissingAttribute("md5"))),
        }
    }

    /// The reply for an issued slot: at once without quotas, else pending the charge.
    fn pending(&self, iq: &Iq<'_>, echo: &Echo<'_>, payload: Element, checked: Checked) -> Begin {
        let me = Some(self.jid_str.as_str());
        let success = iq.result(me, Some(payload));
        match checked.charge {
            None => Begin::Done(Answer::new(Some(success), Outcome::Issued(checked.info))),
            Some(charge) => {
                // The error reply without its <error/>: `complete` adds the one that applies.
                let mut failure = iq.result(me, Some(shallow_copy(echo.payload)));
                crate::xml::set(&mut failure, "type", IqType::Error.as_str());
                Begin::Charge(PendingCharge {
                    charge,
                    success,
                    failure,
                    stanza_ns: iq.ns,
                    dialect: echo.dialect,
                    info: checked.info,
                })
            }
        }
    }
}

/// The request payload to echo in an error, and the dialect of the error's payload.
struct Echo<'a> {
    payload: &'a Element,
    dialect: Dialect,
}

/// Whether a payload is deeper than [`MAX_PAYLOAD_DEPTH`] or holds more than
/// [`MAX_PAYLOAD_ELEMENTS`] elements (bounded work, see [`crate::xml::exceeds`]).
fn too_complex(payload: &Element) -> bool {
    crate::xml::exceeds(payload, MAX_PAYLOAD_DEPTH, MAX_PAYLOAD_ELEMENTS)
}

/// A copy of a request payload for an error's echo: the element, its attributes, and its
/// children with their attributes and text, no deeper (every request form fits; nothing is
/// cloned recursively).
fn shallow_copy(e: &Element) -> Element {
    let mut copy = Element::bare(e.name(), e.ns());
    *copy.attrs_mut() = e.attrs().clone();
    for child in e.children() {
        let mut c = Element::bare(child.name(), child.ns());
        *c.attrs_mut() = child.attrs().clone();
        for t in child.texts() {
            c.append_text_node(t);
        }
        copy.append_child(c);
    }
    copy
}

fn requester(iq: &Iq<'_>) -> Result<Jid, SlotError> {
    iq.from
        .and_then(|f| Jid::new(f).ok())
        .ok_or(SlotError::UnknownRequester)
}

fn stanza_ns(e: &Element) -> &'static str {
    ns::STANZA_NAMESPACES
        .into_iter()
        .find(|n| e.has_ns(*n))
        .unwrap_or(ns::JABBER_CLIENT)
}
