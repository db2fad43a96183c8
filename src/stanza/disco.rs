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

use std::collections::BTreeSet;

use minidom::Element;
use xmpp_parsers::data_forms::{DataForm, DataFormType, Field};
use xmpp_parsers::disco::{DiscoInfoResult, Identity};
use xmpp_parsers::iq::IqResultPayload;
use xmpp_parsers::FromElementError;

use super::upload::Purpose;
use super::{from_owned, parse_size, Dialect, ParseError};
use crate::ns;
use crate::xml::child;

/// The purposes a service can announce, in the order they are read.
const PURPOSES: [Purpose; 4] = [
    Purpose::Message,
    Purpose::Profile,
    Purpose::Ephemeral {
        expire_before: None,
    },
    Purpose::Permanent,
];

/// What an upload service offers, as told by disco#info.
///
/// Built into, and read from, xmpp-parsers' [`DiscoInfoResult`] (with one XEP-0128
/// [`DataForm`] per dialect), and through it into and from a disco#info `<query/>`. Features
/// are a set there: they are written in sorted order, and [`ServiceInfo::other_features`] is
/// read sorted.
///
/// ```
/// use xmpp_upload::stanza::{disco::ServiceInfo, Dialect};
/// let info = ServiceInfo::new([Dialect::V0, Dialect::Legacy]).with_max_file_size(5_242_880);
/// let back = ServiceInfo::try_from(&minidom::Element::from(&info))?;
/// assert_eq!(back.max_file_size, Some(5_242_880));
/// assert_eq!(back.preferred_dialect(), Some(Dialect::V0));
///
/// // An xmpp-parsers IQ payload, and a DiscoInfoResult:
/// let disco = xmpp_parsers::disco::DiscoInfoResult::from(&info);
/// assert_eq!(disco.extensions.len(), 2);
/// assert_eq!(ServiceInfo::try_from(&disco)?, info);
/// let _iq = xmpp_parsers::iq::Iq::from_result("step_02", Some(info));
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

    /// The xmpp-parsers disco#info result: the identity `store`/`file`, the other features,
    /// one feature per dialect, the purposes, `p1:http-file-transfer` when served, and, when
    /// the size is limited, one XEP-0128 form per dialect (hidden `FORM_TYPE` = the dialect's
    /// namespace, `max-file-size` = the limit in bytes).
    #[must_use]
    pub fn to_disco(&self) -> DiscoInfoResult {
        let identity = Identity {
            category: "store".to_owned(),
            type_: "file".to_owned(),
            lang: None,
            name: self.name.clone(),
        };
        let mut features: BTreeSet<String> = self.other_features.iter().cloned().collect();
        features.extend(self.dialects.iter().map(|d| d.namespace().to_owned()));
        features.extend(self.purposes.iter().map(|p| p.feature().to_owned()));
        if self.file_transfer {
            features.insert(ns::FILE_TRANSFER.to_owned());
        }
        let extensions = match self.max_file_size {
            Some(max) => self
                .dialects
                .iter()
                .map(|d| {
                    DataForm::new(
                        DataFormType::Result_,
                        d.namespace(),
                        vec![Field::text_single("max-file-size", &max.to_string())],
                    )
                })
                .collect(),
            None => Vec::new(),
        };
        DiscoInfoResult {
            node: None,
            identities: vec![identity],
            features,
            extensions,
        }
    }

    /// Builds the disco#info `<query/>` (see [`ServiceInfo::to_disco`]).
    #[must_use]
    pub fn to_element(&self) -> Element {
        Element::from(self.to_disco())
    }

    /// Reads a disco#info `<query/>` result. `Ok(None)` when the entity is not an upload
    /// service (no XEP-0363 feature and no `p1:http-file-transfer`).
    ///
    /// The size limit is taken from the form of the preferred dialect, else from any upload
    /// form; a limit that is not a plain integer is an error. This reads the element itself,
    /// more leniently than xmpp-parsers' [`DiscoInfoResult`] (stray text, odd identities and
    /// forms of other kinds are ignored).
    pub fn parse(q: &Element) -> Result<Option<ServiceInfo>, ParseError> {
        if !q.is("query", ns::DISCO_INFO) {
            return Err(ParseError::unexpected("a disco#info <query/>", q));
        }
        let features = q
            .children()
            .filter(|c| c.is("feature", ns::DISCO_INFO))
            .filter_map(|c| c.attr("var"));
        let name = q
            .children()
            .find(|c| c.is("identity", ns::DISCO_INFO) && c.attr("category") == Some("store"))
            .and_then(|c| c.attr("name"));
        let forms = q.children().filter(|c| c.is("x", ns::DATA_FORMS)).map(|x| {
            let field_value = |var: &str| {
                x.children()
                    .find(|f| f.is("field", ns::DATA_FORMS) && f.attr("var") == Some(var))
                    .and_then(|f| child(f, "value", ns::DATA_FORMS))
                    .map(Element::text)
            };
            (field_value("FORM_TYPE"), field_value("max-file-size"))
        });
        Self::assemble(features, name, forms)
    }

    /// Reads an xmpp-parsers [`DiscoInfoResult`] (as [`ServiceInfo::parse`] does).
    pub fn from_disco(result: &DiscoInfoResult) -> Result<Option<ServiceInfo>, ParseError> {
        let name = result
            .identities
            .iter()
            .find(|i| i.category == "store")
            .and_then(|i| i.name.as_deref());
        let forms = result.extensions.iter().map(|form| {
            let max = form
                .fields
                .iter()
                .find(|f| f.var.as_deref() == Some("max-file-size"))
                .and_then(|f| f.values.first().cloned());
            (form.form_type().map(str::to_owned), max)
        });
        Self::assemble(result.features.iter().map(String::as_str), name, forms)
    }

    /// The common part of both readers: features, the store identity's name, and per form
    /// its `FORM_TYPE` and `max-file-size` values.
    fn assemble<'a>(
        features: impl Iterator<Item = &'a str>,
        name: Option<&str>,
        forms: impl Iterator<Item = (Option<String>, Option<String>)>,
    ) -> Result<Option<ServiceInfo>, ParseError> {
        let features: BTreeSet<&str> = features.collect();
        let dialects: Vec<Dialect> = Dialect::ALL
            .into_iter()
            .filter(|d| features.contains(d.namespace()))
            .collect();
        let file_transfer = features.contains(ns::FILE_TRANSFER);
        if dialects.is_empty() && !file_transfer {
            return Ok(None);
        }
        let purposes = PURPOSES
            .into_iter()
            .filter(|p| features.contains(p.feature()))
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

        let mut limits: Vec<(Dialect, u64)> = Vec::new();
        for (form_type, max) in forms {
            let Some(dialect) = form_type.and_then(|t| Dialect::from_namespace(t.trim())) else {
                continue;
            };
            if let Some(v) = max {
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
            name: name.map(str::to_owned),
            dialects,
            max_file_size,
            purposes,
            file_transfer,
            other_features,
        }))
    }
}

/// [`ServiceInfo::parse`]; an entity that is no upload service is
/// [`ParseError::NotUploadService`].
impl TryFrom<&Element> for ServiceInfo {
    type Error = ParseError;
    fn try_from(e: &Element) -> Result<Self, ParseError> {
        Self::parse(e)?.ok_or(ParseError::NotUploadService)
    }
}

/// The xmpp-parsers convention (see [Errors and xmpp-parsers](super#errors-and-xmpp-parsers));
/// a disco#info result of an entity that is no upload service is a mismatch too.
impl TryFrom<Element> for ServiceInfo {
    type Error = FromElementError;
    fn try_from(e: Element) -> Result<Self, FromElementError> {
        from_owned(e, |e| Self::try_from(e))
    }
}

/// [`ServiceInfo::from_disco`]; an entity that is no upload service is
/// [`ParseError::NotUploadService`].
impl TryFrom<&DiscoInfoResult> for ServiceInfo {
    type Error = ParseError;
    fn try_from(d: &DiscoInfoResult) -> Result<Self, ParseError> {
        Self::from_disco(d)?.ok_or(ParseError::NotUploadService)
    }
}

impl From<&ServiceInfo> for DiscoInfoResult {
    fn from(info: &ServiceInfo) -> DiscoInfoResult {
        info.to_disco()
    }
}

impl From<ServiceInfo> for DiscoInfoResult {
    fn from(info: ServiceInfo) -> DiscoInfoResult {
        info.to_disco()
    }
}

impl From<&ServiceInfo> for Element {
    fn from(info: &ServiceInfo) -> Element {
        info.to_element()
    }
}

impl From<ServiceInfo> for Element {
    fn from(info: ServiceInfo) -> Element {
        info.to_element()
    }
}

/// `Iq::from_result(id, Some(info))` builds the disco#info reply.
impl IqResultPayload for ServiceInfo {}

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
        assert_eq!(ServiceInfo::from_disco(&disco), Ok(Some(info.clone())));
        assert_eq!(
            Element::from(DiscoInfoResult::from(&info)),
            Element::from(disco)
        );
    }

    #[test]
    fn exact_output() {
        // The XEP-0363 1.2.0 example 4 layout, through xmpp-parsers.
        let info = ServiceInfo::new([Dialect::V0])
            .with_max_file_size(5_242_880)
            .with_purposes([Purpose::Message]);
        let info = ServiceInfo {
            other_features: Vec::new(),
            ..info
        };
        let expected: Element = "<query xmlns='http://jabber.org/protocol/disco#info'>\
             <identity category='store' type='file' name='HTTP File Upload'/>\
             <feature var='urn:xmpp:http:upload:0'/>\
             <feature var='urn:xmpp:http:upload:purpose:0#message'/>\
             <x xmlns='jabber:x:data' type='result'>\
             <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:http:upload:0</value></field>\
             <field var='max-file-size'><value>5242880</value></field></x></query>"
            .parse()
            .unwrap();
        assert_eq!(info.to_element(), expected);
    }

    #[test]
    fn no_upload_feature_is_a_mismatch() {
        let q: Element = "<query xmlns='http://jabber.org/protocol/disco#info'><feature var='vcard-temp'/></query>".parse().unwrap();
        assert_eq!(ServiceInfo::try_from(&q), Err(ParseError::NotUploadService));
        assert!(matches!(
            ServiceInfo::try_from(q.clone()),
            Err(FromElementError::Mismatch(e)) if e == q
        ));
    }
}
