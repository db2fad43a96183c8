//! Who may upload and download: the [`AccessPolicy`] hook and its default, [`AllowDomains`].

use core::fmt;

use jid::{BareJid, Jid};

/// A file a requester wants to download, as named by a verified file ID.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct FileInfo<'a> {
    /// The object key in the storage.
    pub key: &'a str,
    /// The file name (last segment of the key).
    pub filename: &'a str,
    /// Who uploaded it (sealed into the file ID), so a policy can keep downloads to the
    /// uploader, their contacts or a room's occupants.
    pub owner: &'a BareJid,
}

/// Decides who may upload and who may resolve a file ID.
///
/// # Security
/// This runs before anything is issued; deny by default for requesters you do not know.
/// The requester JID is the IQ's `from`, which the XMPP server stamps and authenticates for
/// its own users; a component must not trust JIDs of remote domains more than their server.
pub trait AccessPolicy: Send + Sync + fmt::Debug {
    /// Whether `requester` may request upload slots.
    fn may_upload(&self, requester: &Jid) -> bool;

    /// Whether `requester` may get a download URL for `file`. Defaults to
    /// [`AccessPolicy::may_upload`].
    fn may_download(&self, requester: &Jid, file: &FileInfo<'_>) -> bool {
        let _ = file;
        self.may_upload(requester)
    }
}

/// Allows the users of a set of domains (exact match on the requester's domain,
/// case-insensitive), for uploads and downloads alike.
///
/// ```
/// use xmpp_upload::service::{AccessPolicy, AllowDomains};
/// let p = AllowDomains::new(["montague.tld"]);
/// assert!(p.may_upload(&"romeo@montague.tld/garden".parse()?));
/// assert!(!p.may_upload(&"tybalt@capulet.tld".parse()?));
/// # Ok::<(), jid::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowDomains {
    domains: Vec<String>,
}

impl AllowDomains {
    /// Allows these domains.
    pub fn new<I>(domains: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        Self {
            domains: domains
                .into_iter()
                .map(|d| d.as_ref().trim_end_matches('.').to_ascii_lowercase())
                .collect(),
        }
    }

    /// The default for a service JID: its own domain and its parent domain
    /// (`upload.example.org` → `upload.example.org`, `example.org`); a service at
    /// `example.org` allows `example.org` only, never a top-level domain.
    ///
    /// ```
    /// use xmpp_upload::service::AllowDomains;
    /// assert_eq!(AllowDomains::for_service(&"upload.example.org".parse()?).domains(), ["upload.example.org", "example.org"]);
    /// assert_eq!(AllowDomains::for_service(&"example.org".parse()?).domains(), ["example.org"]);
    /// assert_eq!(AllowDomains::for_service(&"upload.localhost".parse()?).domains(), ["upload.localhost", "localhost"]);
    /// # Ok::<(), jid::Error>(())
    /// ```
    #[must_use]
    pub fn for_service(service: &Jid) -> Self {
        let d = service.domain().as_str();
        let mut domains = vec![d.to_owned()];
        // The parent only when it is itself a host name of two or more labels (or
        // `localhost`), so that a service at `example.org` never opens itself to all of
        // `org`, nor an IP literal to a part of its address.
        let is_ip = d.parse::<std::net::IpAddr>().is_ok() || d.starts_with('[');
        if let Some((_, parent)) = d
            .split_once('.')
            .filter(|(_, p)| (p.contains('.') || *p == "localhost") && !is_ip)
        {
            domains.push(parent.to_owned());
        }
        Self::new(domains)
    }

    /// The allowed domains.
    #[must_use]
    pub fn domains(&self) -> &[String] {
        &self.domains
    }
}

impl AccessPolicy for AllowDomains {
    fn may_upload(&self, requester: &Jid) -> bool {
        let d = requester.domain().as_str();
        self.domains.iter().any(|a| a.eq_ignore_ascii_case(d))
    }
}
