//! File IDs and stable links: sealing a stored object's ID, and resolving an ID or a stable
//! GET URL to a fresh download URL.

use jid::{BareJid, Jid};
use minidom::Element;
use time::OffsetDateTime;
use url::Url;

use super::{FileInfo, SlotError, SlotService};
use crate::file_id::ResolvedFileId;
use crate::stanza::file_transfer::FileMessage;
use crate::storage::{DownloadGrant, StorageBackend, StorageError};

impl<S: StorageBackend> SlotService<S> {
    /// The file ID naming a stored object (as
    /// [`UploadTarget::object_key`](crate::storage::UploadTarget::object_key) gives it)
    /// uploaded by `owner`: opaque (neither key nor owner can be read out), authenticated with
    /// the service secret, resolvable by any node holding it. The owner reaches
    /// [`AccessPolicy::may_download`](super::AccessPolicy::may_download) through
    /// [`FileInfo::owner`]. Sealed only on demand, as XEP-0363 slots without stable links do
    /// not need one.
    ///
    /// # Errors
    /// [`SlotError::Storage`] only if the owner is longer than any JID can be.
    pub fn file_id(
        &self,
        object_key: &str,
        owner: &BareJid,
        now: OffsetDateTime,
    ) -> Result<String, SlotError> {
        self.file_ids
            .seal(object_key, owner, now)
            .ok_or(SlotError::Storage(StorageError::InvalidKey(
                "the owner does not fit a file ID",
            )))
    }

    /// Resolves a file ID for `requester` to a fresh download URL, valid for the configured
    /// download lifetime, after the access policy agrees.
    ///
    /// # Errors
    /// [`SlotError::UnknownFileId`], [`SlotError::ExpiredFileId`], [`SlotError::Forbidden`]
    /// or [`SlotError::Storage`].
    pub fn download_url(
        &self,
        requester: &Jid,
        file_id: &str,
        now: OffsetDateTime,
    ) -> Result<Url, SlotError> {
        self.resolve(requester, file_id, now).map(|(url, _)| url)
    }

    pub(super) fn resolve(
        &self,
        requester: &Jid,
        file_id: &str,
        now: OffsetDateTime,
    ) -> Result<(Url, String), SlotError> {
        let ResolvedFileId { key, owner, .. } =
            self.file_ids.open(file_id, now, self.config.file_id_ttl)?;
        let filename = key.rsplit('/').next().unwrap_or_default();
        if !self.config.access.may_download(
            requester,
            &FileInfo {
                key: &key,
                filename,
                owner: &owner,
            },
        ) {
            return Err(SlotError::Forbidden);
        }
        let url = self.issue_download(key.clone(), now)?;
        Ok((url, key))
    }

    fn issue_download(&self, key: String, now: OffsetDateTime) -> Result<Url, SlotError> {
        let expires = now
            .checked_add(self.config.download_ttl)
            .ok_or(SlotError::Storage(StorageError::InvalidExpiry))?;
        self.storage
            .issue_download(&DownloadGrant::new(key, now, expires))
            .map_err(SlotError::Storage)
    }

    /// Resolves a stable GET URL (see
    /// [`ServiceConfig::stable_get_base`](super::ServiceConfig::stable_get_base)) to a fresh
    /// storage URL for an HTTP 302. Anyone holding the link may fetch the file, as with any
    /// XEP-0363 GET URL; the file ID inside must be genuine and unexpired.
    ///
    /// # Errors
    /// [`SlotError::Disabled`] without a stable base, [`SlotError::UnknownFileId`],
    /// [`SlotError::ExpiredFileId`] or [`SlotError::Storage`].
    pub fn resolve_stable_get(&self, url: &Url, now: OffsetDateTime) -> Result<Url, SlotError> {
        let base = self
            .config
            .stable_get_base
            .as_ref()
            .ok_or(SlotError::Disabled)?;
        let mut segs = url.path_segments().ok_or(SlotError::UnknownFileId)?;
        for b in base
            .path_segments()
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
        {
            if segs.next() != Some(b) {
                return Err(SlotError::UnknownFileId);
            }
        }
        let id = segs.next().ok_or(SlotError::UnknownFileId)?;
        let ResolvedFileId { key, .. } = self.file_ids.open(id, now, self.config.file_id_ttl)?;
        self.issue_download(key, now)
    }

    /// The message payload to share a file ID (`<x xmlns='p1:http-file-transfer'/>`).
    #[must_use]
    pub fn file_message(name: &str, file_id: &str) -> Element {
        FileMessage::new(name, file_id).to_element()
    }
}

/// The stable GET URL for a file ID: `base`, its query dropped, then the ID and the file
/// name as path segments ([`SlotService::resolve_stable_get`] reads it back).
pub(super) fn stable_url(base: &Url, file_id: &str, filename: &str) -> Option<Url> {
    let mut u = base.clone();
    u.set_query(None);
    {
        let mut segs = u.path_segments_mut().ok()?;
        segs.pop_if_empty();
        segs.push(file_id);
        segs.push(filename);
    }
    Some(u)
}
