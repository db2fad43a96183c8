//! What answering a stanza did: [`Answer`] (the reply and its [`Outcome`]) and the two-phase
//! path for hosts that charge their own quota store ([`Begin`], [`PendingCharge`]).

use core::fmt;

use jid::{BareJid, Jid};
use minidom::Element;
use time::OffsetDateTime;

use super::{ChargeError, QuotaLimits, SlotError};
use crate::stanza::Dialect;

/// The protocol a request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// An XEP-0363 slot request, in this dialect (as received: a Smack 4.2.0 hybrid is
    /// [`Dialect::HybridV0`]).
    Upload(Dialect),
    /// A `p1:http-file-transfer` upload request (by MD5).
    FileTransferUpload,
    /// A `p1:http-file-transfer` download request (by file ID).
    FileTransferDownload,
    /// A stable GET link resolved over HTTP ([`SlotService::resolve_stable_get`](crate::SlotService::resolve_stable_get)).
    StableLink,
    /// XEP-0030 service discovery.
    Discovery,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::Upload(d) => f.write_str(d.namespace()),
            Protocol::FileTransferUpload => f.write_str("p1:http-file-transfer upload"),
            Protocol::FileTransferDownload => f.write_str("p1:http-file-transfer download"),
            Protocol::StableLink => f.write_str("stable link"),
            Protocol::Discovery => f.write_str("disco"),
        }
    }
}

/// A slot that was issued: what a host logs or records (an inventory of uploads, say).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuedInfo {
    /// Who asked (the IQ's `from`).
    pub requester: Jid,
    /// The storage object the PUT will create. For stores whose GET URLs are not signed
    /// (external upload servers), the key is enough to fetch the file: keep logs private.
    pub object_key: String,
    /// The declared size (`None`: a `p1` upload by MD5 alone, capped at the size limit).
    pub size: Option<u64>,
    /// The checked content type, when one was given.
    pub content_type: Option<String>,
    /// What the quotas were charged (at least the minimum charge; 0 without quotas).
    pub charged: u64,
    /// The protocol of the request.
    pub protocol: Protocol,
}

/// What answering a stanza did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// A slot was issued.
    Issued(IssuedInfo),
    /// A file ID was resolved to a fresh download URL.
    Resolved {
        /// Who asked.
        requester: Jid,
        /// The object the URL points to.
        object_key: String,
        /// How it was asked for.
        protocol: Protocol,
    },
    /// The request was refused with an error reply.
    Refused {
        /// Who asked, when the IQ named a valid requester.
        requester: Option<Jid>,
        /// The protocol of the request, when it could be told.
        protocol: Option<Protocol>,
        /// Why. A storage or ledger failure keeps its cause as the error's
        /// [`source`](std::error::Error::source); the reply carries none of it.
        error: SlotError,
    },
    /// Service discovery was answered.
    Discovery,
    /// Not a stanza for this service: no reply (the host routes it elsewhere).
    NotForThisService,
}

impl fmt::Display for Outcome {
    /// One log line, without URLs, signatures or secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Issued(i) => {
                write!(
                    f,
                    "slot issued to {} ({}): {}",
                    i.requester, i.protocol, i.object_key
                )?;
                match i.size {
                    Some(s) => write!(f, ", {s} bytes")?,
                    None => f.write_str(", size not declared")?,
                }
                if let Some(t) = &i.content_type {
                    write!(f, ", {t}")?;
                }
                Ok(())
            }
            Outcome::Resolved {
                requester,
                object_key,
                protocol,
            } => write!(
                f,
                "download URL issued to {requester} ({protocol}): {object_key}"
            ),
            Outcome::Refused {
                requester,
                protocol,
                error,
            } => {
                f.write_str("refused")?;
                if let Some(r) = requester {
                    write!(f, " {r}")?;
                }
                if let Some(p) = protocol {
                    write!(f, " ({p})")?;
                }
                write!(f, ": {error}")?;
                let mut cause = std::error::Error::source(error);
                while let Some(c) = cause {
                    write!(f, ": {c}")?;
                    cause = c.source();
                }
                Ok(())
            }
            Outcome::Discovery => f.write_str("disco answered"),
            Outcome::NotForThisService => f.write_str("not for this service"),
        }
    }
}

/// The reply to a stanza and what happened.
#[must_use]
#[non_exhaustive]
pub struct Answer {
    /// The stanza to send back; `None` when the stanza is not for this service
    /// ([`Outcome::NotForThisService`]).
    pub reply: Option<Element>,
    /// What happened, for the host's logs and records.
    pub outcome: Outcome,
}

impl Answer {
    pub(super) fn new(reply: Option<Element>, outcome: Outcome) -> Self {
        Self { reply, outcome }
    }
}

impl fmt::Debug for Answer {
    /// The reply is summarised: a slot's URLs are bearer capabilities.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answer")
            .field(
                "reply",
                &self
                    .reply
                    .as_ref()
                    .map(|r| format!("<iq type='{}'/>", r.attr("type").unwrap_or_default())),
            )
            .field("outcome", &self.outcome)
            .finish()
    }
}

/// The first step of the two-phase path ([`SlotService::begin`](crate::SlotService::begin)).
#[must_use]
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a short-lived return value, matched once: boxing would only add an allocation"
)]
pub enum Begin {
    /// Nothing to charge: here is the answer.
    Done(Answer),
    /// Every check passed and the URLs are issued; charge [`PendingCharge::charge`] to the
    /// host's quota store, then [`PendingCharge::complete`] with the result.
    Charge(PendingCharge),
}

/// What a slot costs against the quotas.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Charge {
    /// Who pays (the requester's bare JID).
    pub user: BareJid,
    /// How many bytes (the declared size, or the minimum charge if larger).
    pub bytes: u64,
    /// The limits to check against.
    pub limits: QuotaLimits,
    /// The time of the request (the charge's place in the rolling window).
    pub now: OffsetDateTime,
}

/// A slot that passed every check and is waiting for the host's quota charge. Completing it
/// gives the reply: the slot when the charge was recorded, the XEP-0363 quota error (with
/// `<retry stamp=/>` when known) or `wait`/`internal-server-error` when it was not.
///
/// Dropping it sends nothing and charges nothing; the URLs inside are never shown by `Debug`.
#[must_use = "complete the pending slot to get the reply"]
pub struct PendingCharge {
    pub(super) charge: Charge,
    pub(super) success: Element,
    /// The error reply without its `<error/>`, and the dialect of its payload.
    pub(super) failure: Element,
    pub(super) stanza_ns: &'static str,
    pub(super) dialect: Dialect,
    pub(super) info: IssuedInfo,
}

impl fmt::Debug for PendingCharge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingCharge")
            .field("charge", &self.charge)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl PendingCharge {
    /// What to charge.
    #[must_use]
    pub fn charge(&self) -> &Charge {
        &self.charge
    }

    /// What will be issued if the charge is recorded.
    #[must_use]
    pub fn info(&self) -> &IssuedInfo {
        &self.info
    }

    /// Finishes with the host's charge result: `Ok(())` when it recorded the charge.
    pub fn complete(self, result: Result<(), ChargeError>) -> Answer {
        match result {
            Ok(()) => Answer::new(Some(self.success), Outcome::Issued(self.info)),
            Err(e) => {
                let error = SlotError::from(e);
                let mut reply = self.failure;
                reply.append_child(crate::stanza::error::error_element(
                    error.to_stanza_error(self.dialect),
                    self.stanza_ns,
                ));
                Answer::new(
                    Some(reply),
                    Outcome::Refused {
                        requester: Some(self.info.requester),
                        protocol: Some(self.info.protocol),
                        error,
                    },
                )
            }
        }
    }
}
