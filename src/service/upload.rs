//! The policy check and the issuing of a slot: access, file name, size, content type, the
//! storage backend's URLs, then the quota charge ([`SlotService::request_slot`] for hosts that
//! parse stanzas themselves; the stanza paths share the same check).

use jid::{BareJid, Jid};
use time::OffsetDateTime;

use super::download::stable_url;
use super::{
    inventory, Charge, ChargeError, InventoryError, IssuedInfo, IssuedSlot, Protocol,
    QuotaExceeded, QuotaLedger, QuotaScope, SlotError, SlotService,
};
use crate::checked::{ContentType, FileName};
use crate::stanza::upload::{Purpose, Slot, SlotHeader, SlotRequest};
use crate::stanza::ParseError;
use crate::storage::{CheckedUpload, StorageBackend, StorageError, UploadGrant};

/// What an upload asks for, after parsing and before the policy check.
pub(super) struct Ask<'a> {
    pub(super) requester: &'a Jid,
    pub(super) iq_id: &'a str,
    pub(super) filename: &'a str,
    pub(super) size: Option<u64>,
    pub(super) content_type: Option<&'a str>,
    pub(super) sha256: Option<[u8; 32]>,
    pub(super) md5: Option<[u8; 16]>,
    pub(super) get_cap: Option<OffsetDateTime>,
    pub(super) protocol: Protocol,
}

/// A request that passed every check, with its URLs issued and its charge computed.
pub(super) struct Checked {
    pub(super) issued: IssuedSlot,
    pub(super) info: IssuedInfo,
    pub(super) charge: Option<Charge>,
}

impl<S: StorageBackend> SlotService<S> {
    /// Checks an XEP-0363 request from `requester` and issues a slot, charging the configured
    /// [`QuotaLedger`]: the typed core of [`SlotService::handle`], for hosts that parse
    /// stanzas themselves. `iq_id` feeds the slot ID derivation (any string unique per request
    /// will do).
    ///
    /// An XEP-0363 1.2.0 `ephemeral` purpose with `expire-before` caps the GET URL's lifetime
    /// at that time; other purposes are served as `message`.
    ///
    /// # Errors
    /// The [`SlotError`] of the first check that fails (see the [module docs](super)).
    pub fn request_slot(
        &self,
        requester: &Jid,
        request: &SlotRequest,
        iq_id: &str,
        now: OffsetDateTime,
    ) -> Result<IssuedSlot, SlotError> {
        let ask = Ask {
            requester,
            iq_id,
            filename: &request.filename,
            size: Some(request.size),
            content_type: request.content_type.as_deref(),
            sha256: request.sha256(),
            md5: None,
            get_cap: ephemeral_cap(request, now),
            protocol: Protocol::Upload(request.dialect),
        };
        let checked = self.check_and_issue(&ask, now)?;
        if let Some(c) = &checked.charge {
            self.charge(c)?;
        }
        Ok(checked.issued)
    }

    /// The simple path's charge: the stored-bytes quota on the configured inventory, then
    /// the windowed quotas on the configured ledger.
    pub(super) fn charge(&self, c: &Charge) -> Result<(), ChargeError> {
        if let (Some(limit), Some(inventory)) = (c.limits.stored, &self.config.inventory) {
            let unavailable = |e: InventoryError| ChargeError::Unavailable(e.0);
            let stored = inventory.stored_bytes(&c.user).map_err(unavailable)?;
            if stored.saturating_add(c.bytes) > limit {
                let retry_at = match limit.checked_sub(c.bytes) {
                    None => None,
                    Some(target) => inventory::freed_by_age_at(
                        &inventory.files_of(&c.user).map_err(unavailable)?,
                        stored,
                        target,
                        self.config.retention.max_age,
                    ),
                };
                return Err(QuotaExceeded::new(QuotaScope::Stored, retry_at).into());
            }
        }
        if c.limits.is_windowed() {
            self.config
                .ledger
                .charge(&c.user, c.bytes, c.now, &c.limits)?;
        }
        Ok(())
    }

    /// The policy check and the (pure) issuing of the URLs; the quota charge is the caller's.
    pub(super) fn check_and_issue(
        &self,
        ask: &Ask<'_>,
        now: OffsetDateTime,
    ) -> Result<Checked, SlotError> {
        let c = &self.config;
        // Fail closed on a guessable secret whichever constructor was used (`new` checks
        // nothing): slot IDs derived from it could be forged.
        crate::storage::check_key_len(c.secret.len()).map_err(SlotError::Storage)?;
        if !c.access.may_upload(ask.requester) {
            return Err(SlotError::Forbidden);
        }
        let filename = FileName::new(ask.filename)?;
        if let Some(size) = ask.size {
            if size > c.max_file_size {
                return Err(SlotError::TooLarge {
                    max: c.max_file_size,
                });
            }
        }
        let content_type = ask
            .content_type
            .filter(|t| !t.is_empty())
            .map(ContentType::new)
            .transpose()?;
        if let Some(allowed) = &c.allowed_content_types {
            let octets;
            let ty = if let Some(t) = &content_type {
                t
            } else {
                octets = ContentType::octet_stream();
                &octets
            };
            if !allowed.iter().any(|p| ty.matches(p)) {
                return Err(SlotError::ContentTypeNotAllowed);
            }
        }
        let put_expires = now
            .checked_add(c.put_ttl)
            .ok_or(SlotError::Storage(StorageError::InvalidExpiry))?;
        let get_expires = match (c.get_ttl.and_then(|t| now.checked_add(t)), ask.get_cap) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        // Without a declared size (a p1 upload by MD5 alone) the PUT is capped at the size
        // limit; a quota cannot be charged fairly for an unknown size, so it needs one.
        if ask.size.is_none() && c.limits.is_limited() {
            return Err(SlotError::Malformed(ParseError::MissingAttribute("size")));
        }
        let bare: BareJid = ask.requester.to_bare();

        let nanos = now.unix_timestamp_nanos().to_be_bytes();
        let size_bytes = ask.size.unwrap_or(u64::MAX).to_be_bytes();
        let full = ask.requester.to_string();
        let tag = self.slot_key.sign_fields(&[
            full.as_bytes(),
            ask.iq_id.as_bytes(),
            filename.as_str().as_bytes(),
            &size_bytes,
            content_type
                .as_ref()
                .map_or(&[][..], |t| t.as_str().as_bytes()),
            &nanos,
        ]);
        let mut slot_id = [0u8; 16];
        slot_id.copy_from_slice(tag.get(..16).unwrap_or(&[0; 16]));
        let info_type = content_type.as_ref().map(|t| t.as_str().to_owned());
        let grant = UploadGrant::new(CheckedUpload {
            slot_id,
            filename,
            size: ask.size,
            max_size: ask.size.unwrap_or(c.max_file_size),
            content_type,
            sha256: ask.sha256,
            md5: ask.md5,
            requester: bare.clone(),
            now,
            put_expires,
            get_expires,
        });
        let target = self
            .storage
            .issue_upload(&grant)
            .map_err(SlotError::Storage)?;
        let get = match &c.stable_get_base {
            Some(base) => stable_url(
                base,
                &self.file_id(&target.object_key, &bare, now)?,
                grant.filename().as_str(),
            )
            .ok_or(SlotError::Storage(StorageError::InvalidBaseUrl))?,
            None => target.get_url.clone(),
        };
        let charge = c.limits.is_limited().then(|| Charge {
            user: bare,
            bytes: ask.size.unwrap_or(0).max(c.min_charge),
            limits: c.limits,
            now,
        });
        let info = IssuedInfo {
            requester: ask.requester.clone(),
            object_key: target.object_key.clone(),
            size: ask.size,
            content_type: info_type,
            charged: charge.as_ref().map_or(0, |c| c.bytes),
            protocol: ask.protocol,
        };
        let mut slot = Slot::new(target.put_url.clone(), get);
        slot.headers = target
            .slot_headers
            .iter()
            .map(slot_header)
            .collect::<Result<_, _>>()?;
        Ok(Checked {
            issued: IssuedSlot { slot, target },
            info,
            charge,
        })
    }
}

/// The GET URL's cap from an XEP-0363 1.2.0 `ephemeral` purpose with an `expire-before` still
/// ahead.
pub(super) fn ephemeral_cap(request: &SlotRequest, now: OffsetDateTime) -> Option<OffsetDateTime> {
    match request.purpose {
        Some(Purpose::Ephemeral {
            expire_before: Some(t),
        }) if t > now => Some(t),
        _ => None,
    }
}

/// A backend's slot header as XEP-0363 allows it: `Authorization`, `Cookie` or `Expires`,
/// exact case, no CR or LF (strict clients such as nbxmpp reject a whole slot otherwise).
fn slot_header(h: &crate::storage::Header) -> Result<SlotHeader, SlotError> {
    use crate::stanza::upload::HeaderName;
    let name = match h.name.as_str() {
        "Authorization" => HeaderName::Authorization,
        "Cookie" => HeaderName::Cookie,
        "Expires" => HeaderName::Expires,
        _ => {
            return Err(SlotError::Storage(StorageError::Unsupported(
                "a slot header other than Authorization, Cookie or Expires",
            )))
        }
    };
    if h.value.contains(['\r', '\n']) {
        return Err(SlotError::Storage(StorageError::Unsupported(
            "a slot header value with CR or LF",
        )));
    }
    Ok(SlotHeader::new(name, &h.value))
}
