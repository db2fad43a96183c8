//! XEP-0030 service discovery of an upload service, with the XEP-0128 `max-file-size` form.
//!
//! A service answers disco#info with the identity `store`/`file`, one feature per dialect it
//! serves, and one form per dialect namespace:
//!
//! ```xml
//! <query xmlns='http://jabber.org/protocol/disco#info'>
//!   <identity category='store' type='file' name='HTTP File Upload'/>
//!   <feature var='urn:xmpp:http:upload:0'/>
//!   <x type='result' xmlns='jabber:x:data'>
//!     <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>
//!     <field var='max-file-size'><value>5242880</value></field>
//!   </x>
//! </query>
//! ```

use minidom::Element;
use xmpp_parsers::disco::DiscoInfoResult;

use super::upload::Purpose;
use super::{parse_size, Dialect, ParseError};
use crate::ns;
use crate::xml::{child, el, text_el, with};

/// What an upload service offers, as told by disco#info.
///
/// ```
/// use xmpp_upload::stanza::{disco::ServiceInfo, Dialect};
/// let info = ServiceInfo::new([Dialect::V0, Dialect::Legacy]).with_max_file_size(5_242_880);
/// let back = ServiceInfo::parse(&info.to_element())?.expect("an upload service");
/// assert_eq!(back.max_file_size, Some(5_242_880));
/// assert_eq!(back.preferred_dialect(), Some(Dialect::V0));
/// # Ok::<(), xmpp_upload::stanza::ParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceInfo {
    /// The identity's human-readable name.
    pub name: Option<String>,
    /// The XEP-0363 dialects served, in the order advertised.
    pub dialects: Vec<Dialect>,
    /// The largest file accepted, in bytes, when limited.
    pub max_file_size: Option<u64>,
    /// The XEP-0363 1.2.0 purposes supported.
    pub purposes: Vec<Purpose>,
    /// Whether `p1:http-file-transfer` (file IDs) is served.
    pub file_transfer: bool,
    /// Other features the entity lists (kept so that a parsed result rebuilds unchanged).
    pub other_features: Vec<String>,
}

impl ServiceInfo {
    /// A service serving these dialects, named "HTTP File Upload", without a size limit.
    #[must_use]
    pub fn new(dialects: impl IntoIterator<Item = Dialect>) -> Self {
        Self {
            name: Some("HTTP File Upload".to_owned()),
            dialects: dialects.into_iter().map(Dialect::answer).collect(),
            max_file_size: None,
            purposes: Vec::new(),
            file_transfer: false,
            other_features: vec![ns::DISCO_INFO.to_owned()],
        }
    }

    /// Sets the size limit.
    #[must_use]
    pub fn with_max_file_size(mut self, max: u64) -> Self {
        self.max_file_size = Some(max);
        self
    }

    /// Sets the supported purposes.
    #[must_use]
    pub fn with_purposes(mut self, purposes: impl IntoIterator<Item = Purpose>) -> Self {
        self.purposes = purposes.into_iter().collect();
        self
    }

    /// Sets whether `p1:http-file-transfer` is served.
    #[must_use]
    pub fn with_file_transfer(mut self, on: bool) -> Self {
        self.file_transfer = on;
        self
    }

    /// The dialect a client should use: the newest one served.
    #[must_use]
    pub fn preferred_dialect(&self) -> Option<Dialect> {
        Dialect::ALL.into_iter().find(|d| self.dialects.contains(d))
    }

    /// Builds the disco#info `<query/>`.
    #[must_use]
    pub fn to_element(&self) -> Element {
        let mut q = el("query", ns::DISCO_INFO);
        let mut identity = with(
            with(el("identity", ns::DISCO_INFO), "category", "store"),
            "type",
            "file",
        );
        if let Some(name) = &self.name {
            crate::xml::set(&mut identity, "name", name.as_str());
        }
        q.append_child(identity);
        let feature = |var: &str| with(el("feature", ns::DISCO_INFO), "var", var);
        for f in &self.other_features {
            q.append_child(feature(f));
        }
        for d in &self.dialects {
            q.append_child(feature(d.namespace()));
        }
        for p in &self.purposes {
            q.append_child(feature(p.feature()));
        }
        if self.file_transfer {
            q.append_child(feature(ns::FILE_TRANSFER));
        }
        if let Some(max) = self.max_file_size {
            for d in &self.dialects {
                let mut x = with(el("x", ns::DATA_FORMS), "type", "result");
                let mut form_type = with(
                    with(el("field", ns::DATA_FORMS), "var", "FORM_TYPE"),
                    "type",
                    "hidden",
                );
                form_type.append_child(text_el("value", ns::DATA_FORMS, d.namespace()));
                x.append_child(form_type);
                let mut size = with(el("field", ns::DATA_FORMS), "var", "max-file-size");
                size.append_child(text_el("value", ns::DATA_FORMS, max.to_string()));
                x.append_child(size);
                q.append_child(x);
            }
        }
        q
    }

    /// Reads a disco#info `<query/>` result. `Ok(None)` when the entity is not an upload
    /// service (no XEP-0363 feature and no `p1:http-file-transfer`).
    ///
    /// The size limit is taken from the form of the preferred dialect, else from any upload
    /// form; a limit that is not a plain integer is an error.
    pub fn parse(q: &Element) -> Result<Option<ServiceInfo>, ParseError> {
        if !q.is("query", ns::DISCO_INFO) {
            return Err(ParseError::unexpected("a disco#info <query/>", q));
        }
        let features: Vec<&str> = q
            .children()
            .filter(|c| c.is("feature", ns::DISCO_INFO))
            .filter_map(|c| c.attr("var"))
            .collect();
        let dialects: Vec<Dialect> = Dialect::ALL
            .into_iter()
            .filter(|d| features.contains(&d.namespace()))
            .collect();
        let file_transfer = features.contains(&ns::FILE_TRANSFER);
        if dialects.is_empty() && !file_transfer {
            return Ok(None);
        }
        let purposes = [
            Purpose::Message,
            Purpose::Profile,
            Purpose::Ephemeral {
                expire_before: None,
            },
            Purpose::Permanent,
        ]
        .into_iter()
        .filter(|p| features.contains(&p.feature()))
        .collect();
        let known = |f: &str| {
            Dialect::from_namespace(f).is_some()
                || f == ns::FILE_TRANSFER
                || f.starts_with("urn:xmpp:http:upload:purpose:0#")
        };
        let other_features = features
            .iter()
            .filter(|f| !known(f))
            .map(|f| (*f).to_owned())
            .collect();
        let name = q
            .children()
            .find(|c| c.is("identity", ns::DISCO_INFO) && c.attr("category") == Some("store"))
            .and_then(|c| c.attr("name"))
            .map(str::to_owned);

        let mut limits: Vec<(Dialect, u64)> = Vec::new();
        for x in q.children().filter(|c| c.is("x", ns::DATA_FORMS)) {
            let field_value = |var: &str| {
                x.children()
                    .find(|f| f.is("field", ns::DATA_FORMS) && f.attr("var") == Some(var))
                    .and_then(|f| child(f, "value", ns::DATA_FORMS))
                    .map(|v| v.text())
            };
            let Some(dialect) =
                field_value("FORM_TYPE").and_then(|t| Dialect::from_namespace(t.trim()))
            else {
                continue;
            };
            if let Some(v) = field_value("max-file-size") {
                limits.push((dialect, parse_size(v.trim())?));
            }
        }
        let preferred = Dialect::ALL.into_iter().find(|d| dialects.contains(d));
        let max_file_size = limits
            .iter()
            .find(|(d, _)| Some(*d) == preferred)
            .or_else(|| limits.first())
            .map(|(_, n)| *n);
        Ok(Some(ServiceInfo {
            name,
            dialects,
            max_file_size,
            purposes,
            file_transfer,
            other_features,
        }))
    }

    /// Reads an xmpp-parsers [`DiscoInfoResult`].
    pub fn from_disco(result: &DiscoInfoResult) -> Result<Option<ServiceInfo>, ParseError> {
        Self::parse(&Element::from(result.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_an_upload_service() {
        let q: Element = "<query xmlns='http://jabber.org/protocol/disco#info'><identity category='conference' type='text'/><feature var='http://jabber.org/protocol/muc'/></query>".parse().unwrap();
        assert_eq!(ServiceInfo::parse(&q), Ok(None));
    }

    #[test]
    fn full_round_trip() {
        let info = ServiceInfo::new(Dialect::ALL)
            .with_max_file_size(10)
            .with_purposes([Purpose::Message, Purpose::Profile])
            .with_file_transfer(true);
        assert_eq!(
            ServiceInfo::parse(&info.to_element()),
            Ok(Some(info.clone()))
        );
        let disco = DiscoInfoResult::try_from(info.to_element()).unwrap();
        assert_eq!(disco.extensions.len(), 3);
        assert_eq!(ServiceInfo::from_disco(&disco), Ok(Some(info)));
    }
}
