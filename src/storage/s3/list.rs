//! The ListObjectsV2 response body (S3 API reference, "ListObjectsV2", response syntax):
//! a hand-written, single-pass scanner.
//!
//! Why not `minidom`: it builds the whole tree, and dropping or printing a deeply nested tree
//! recurses once per level, so a hostile body of nested elements can exhaust the stack. This
//! scanner keeps only a stack of at most [`MAX_DEPTH`] borrowed element names, looks at each
//! byte a bounded number of times (every search starts where the last one ended), and
//! accumulates text only for the handful of elements it reads, each capped at [`MAX_TEXT`]
//! bytes. It reads what S3 writes: elements, attributes, character and entity references,
//! comments, processing instructions and CDATA. A DOCTYPE (and so any user-defined entity) is
//! refused.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The largest body [`ListPage::parse`] reads, in bytes (8 MiB; a full page of 1000 objects
/// with 1024-byte keys is under 2 MiB).
pub const MAX_LIST_BODY: usize = 8 * 1024 * 1024;

/// The deepest element nesting accepted (S3 writes 3 levels: `ListBucketResult` /
/// `Contents` / `Owner` / `ID`).
const MAX_DEPTH: usize = 8;

/// The most objects one page may list (S3's `max-keys` cap).
const MAX_OBJECTS: usize = 1000;

/// The longest text of an element that is read (a 1024-byte key, entity-decoded, fits).
const MAX_TEXT: usize = 4096;

/// One object of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListedObject {
    /// The full object key, as [`super::S3Store::presign_delete`] takes it.
    pub key: String,
    /// The size in bytes.
    pub size: u64,
    /// When the object was stored (S3 writes `2009-10-12T17:50:30.000Z`, RFC 3339).
    pub last_modified: OffsetDateTime,
    /// The entity tag as S3 writes it, quotes included (`"fba9…"`); `None` when the store
    /// sent none.
    pub etag: Option<String>,
}

/// One page of a ListObjectsV2 answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListPage {
    /// The objects of this page, in the order the store listed them (UTF-8 binary order of
    /// the keys on S3).
    pub objects: Vec<ListedObject>,
    /// Whether more keys follow: sign the next page with
    /// [`ListPage::next_continuation_token`].
    pub is_truncated: bool,
    /// The token of the next page (`continuation-token`); always present when truncated.
    pub next_continuation_token: Option<String>,
}

/// Why a ListObjectsV2 body was refused. Carries no body text, except the short error code of
/// an S3 error answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ListError {
    /// The body is larger than [`MAX_LIST_BODY`].
    #[error("listing body larger than {max} bytes")]
    TooLarge {
        /// The limit, in bytes.
        max: usize,
    },
    /// Elements are nested deeper than a listing ever is.
    #[error("listing nested deeper than {max} elements")]
    TooDeep {
        /// The deepest nesting accepted.
        max: usize,
    },
    /// More objects than one page can hold.
    #[error("listing has more than {max} objects")]
    TooManyObjects {
        /// The most objects accepted.
        max: usize,
    },
    /// The body is not well-formed XML as far as the scanner reads it.
    #[error("malformed XML at byte {at}: {what}")]
    Malformed {
        /// The byte offset where the problem was seen.
        at: usize,
        /// What was wrong.
        what: &'static str,
    },
    /// The root element is neither `ListBucketResult` nor `Error`.
    #[error("not a ListObjectsV2 result")]
    NotAListing,
    /// The store answered with an S3 error body (`<Error><Code>…`), for example
    /// `AccessDenied` or `NoSuchBucket`. The code is cut to 64 ASCII letters and digits.
    #[error("S3 error response: {code}")]
    ErrorResponse {
        /// The S3 error code.
        code: String,
    },
    /// A required element is missing (`Key`, `Size` or `LastModified` of an object,
    /// `NextContinuationToken` of a truncated page).
    #[error("missing element {0}")]
    Missing(&'static str),
    /// An element that may appear once appears twice.
    #[error("element {0} appears twice")]
    Duplicate(&'static str),
    /// An element's value is invalid (not a number, a time, `true`/`false`, too long, …).
    #[error("invalid value in element {0}")]
    InvalidValue(&'static str),
}

/// The elements whose text the scanner reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    IsTruncated,
    NextToken,
    Key,
    Size,
    LastModified,
    ETag,
    ErrorCode,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Self::IsTruncated => "IsTruncated",
            Self::NextToken => "NextContinuationToken",
            Self::Key => "Key",
            Self::Size => "Size",
            Self::LastModified => "LastModified",
            Self::ETag => "ETag",
            Self::ErrorCode => "Code",
        }
    }
}

/// The root element seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    Listing,
    Error,
}

/// An object being read.
#[derive(Debug, Default)]
struct Partial {
    key: Option<String>,
    size: Option<u64>,
    last_modified: Option<OffsetDateTime>,
    etag: Option<String>,
}

/// The scanner's state.
struct Scanner<'a> {
    body: &'a str,
    pos: usize,
    stack: Vec<&'a str>,
    root: Option<Root>,
    root_closed: bool,
    /// The field whose text is being collected, and the text so far.
    field: Option<Field>,
    text: String,
    object: Option<Partial>,
    page: ListPage,
    truncated_seen: bool,
    error_code: Option<String>,
}

impl ListPage {
    /// Parses the body of a ListObjectsV2 answer (`200 OK`; an S3 error body gives
    /// [`ListError::ErrorResponse`]).
    ///
    /// Elements it does not read (`Name`, `Prefix`, `KeyCount`, `StorageClass`, `Owner`,
    /// `CommonPrefixes`, …) are skipped, within the depth limit. Keys are taken verbatim
    /// (entity references decoded, no whitespace trimmed); `Size`, `LastModified`,
    /// `IsTruncated` and `ETag` are trimmed. Request the listing without `encoding-type`
    /// ([`super::S3Store::presign_list`] does): keys are then not URL-encoded.
    ///
    /// # Errors
    /// [`ListError`]: too large, too deep, too many objects, malformed XML, not a listing, an
    /// S3 error body, a missing, repeated or invalid field. Work is linear in the body's
    /// length and nothing recurses.
    pub fn parse(body: &str) -> Result<Self, ListError> {
        if body.len() > MAX_LIST_BODY {
            return Err(ListError::TooLarge { max: MAX_LIST_BODY });
        }
        let mut scanner = Scanner {
            body,
            pos: 0,
            stack: Vec::with_capacity(MAX_DEPTH),
            root: None,
            root_closed: false,
            field: None,
            text: String::new(),
            object: None,
            page: Self::default(),
            truncated_seen: false,
            error_code: None,
        };
        scanner.run()?;
        scanner.finish()
    }
}

/// The name part after a namespace prefix (`s3:Key` → `Key`).
fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

fn is_name_end(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | b'/' | b'>')
}

impl<'a> Scanner<'a> {
    fn malformed(&self, what: &'static str) -> ListError {
        ListError::Malformed { at: self.pos, what }
    }

    fn rest(&self) -> &'a str {
        self.body.get(self.pos..).unwrap_or("")
    }

    /// Moves past the next `end` (searching from the current position).
    fn skip_past(&mut self, end: &str, what: &'static str) -> Result<&'a str, ListError> {
        let rest = self.rest();
        let at = rest.find(end).ok_or_else(|| self.malformed(what))?;
        let inside = rest.get(..at).unwrap_or("");
        self.pos = self.pos.saturating_add(at).saturating_add(end.len());
        Ok(inside)
    }

    fn run(&mut self) -> Result<(), ListError> {
        while self.pos < self.body.len() {
            let rest = self.rest();
            if rest.starts_with("<?") {
                self.skip_past("?>", "unterminated processing instruction")?;
            } else if rest.starts_with("<!--") {
                self.skip_past("-->", "unterminated comment")?;
            } else if rest.starts_with("<![CDATA[") {
                self.pos = self.pos.saturating_add("<![CDATA[".len());
                let raw = self.skip_past("]]>", "unterminated CDATA section")?;
                self.text_in(raw, false)?;
            } else if rest.starts_with("<!") {
                return Err(self.malformed("DOCTYPE or declaration refused"));
            } else if rest.starts_with("</") {
                self.end_tag()?;
            } else if rest.starts_with('<') {
                self.start_tag()?;
            } else {
                let len = rest.find('<').unwrap_or(rest.len());
                let raw = rest.get(..len).unwrap_or("");
                self.text_in(raw, true)?;
                self.pos = self.pos.saturating_add(len);
            }
        }
        if self.root.is_none() {
            return Err(self.malformed("no root element"));
        }
        if !self.root_closed {
            return Err(self.malformed("unexpected end of body"));
        }
        Ok(())
    }

    /// Text between tags: outside the root only whitespace; inside a read field, collected.
    fn text_in(&mut self, raw: &str, decode: bool) -> Result<(), ListError> {
        if self.stack.is_empty() {
            if raw.bytes().all(|b| b.is_ascii_whitespace()) {
                return Ok(());
            }
            return Err(self.malformed("text outside the root element"));
        }
        let Some(field) = self.field else {
            return Ok(());
        };
        if decode {
            decode_into(&mut self.text, raw).map_err(|what| self.malformed(what))?;
        } else {
            self.text.push_str(raw);
        }
        if self.text.len() > MAX_TEXT {
            return Err(ListError::InvalidValue(field.name()));
        }
        Ok(())
    }

    fn start_tag(&mut self) -> Result<(), ListError> {
        let start = self.pos;
        let bytes = self.body.as_bytes();
        let mut i = start.saturating_add(1);
        while bytes.get(i).is_some_and(|&b| !is_name_end(b) && b != b'<') {
            i = i.saturating_add(1);
        }
        let name = self.body.get(start.saturating_add(1)..i).unwrap_or("");
        if name.is_empty() {
            return Err(self.malformed("empty element name"));
        }
        // Attributes: skip to `>`, honouring quoted values.
        let self_closing = loop {
            match bytes.get(i) {
                None => {
                    self.pos = i;
                    return Err(self.malformed("unterminated start tag"));
                }
                Some(b'"' | b'\'') => {
                    let quote = bytes.get(i).copied().unwrap_or(b'"');
                    let after = i.saturating_add(1);
                    let len = bytes
                        .get(after..)
                        .and_then(|tail| tail.iter().position(|&b| b == quote))
                        .ok_or(ListError::Malformed {
                            at: i,
                            what: "unterminated attribute value",
                        })?;
                    i = after.saturating_add(len).saturating_add(1);
                }
                Some(b'<') => {
                    self.pos = i;
                    return Err(self.malformed("`<` inside a tag"));
                }
                Some(b'/') if bytes.get(i.saturating_add(1)) == Some(&b'>') => {
                    i = i.saturating_add(2);
                    break true;
                }
                Some(b'>') => {
                    i = i.saturating_add(1);
                    break false;
                }
                Some(_) => i = i.saturating_add(1),
            }
        };
        self.open(name)?;
        self.pos = i;
        if self_closing {
            self.close()?;
        }
        Ok(())
    }

    fn end_tag(&mut self) -> Result<(), ListError> {
        self.pos = self.pos.saturating_add(2);
        let inside = self.skip_past(">", "unterminated end tag")?;
        let name = inside.trim_end_matches([' ', '\t', '\r', '\n']);
        if self.stack.last() != Some(&name) {
            return Err(self.malformed("end tag does not match the open element"));
        }
        self.close()
    }

    /// An element opens: check the depth and the root, decide whether its text is read.
    fn open(&mut self, name: &'a str) -> Result<(), ListError> {
        if self.root_closed {
            return Err(self.malformed("content after the root element"));
        }
        if self.stack.len() >= MAX_DEPTH {
            return Err(ListError::TooDeep { max: MAX_DEPTH });
        }
        if self.field.is_some() {
            // A read field must be text only.
            return Err(ListError::InvalidValue(self.field.map_or("", Field::name)));
        }
        let local_name = local(name);
        let depth = self.stack.len();
        match (self.root, depth) {
            (None, _) => {
                self.root = Some(match local_name {
                    "ListBucketResult" => Root::Listing,
                    "Error" => Root::Error,
                    _ => return Err(ListError::NotAListing),
                });
            }
            (Some(Root::Listing), 1) => match local_name {
                "Contents" => {
                    if self.page.objects.len() >= MAX_OBJECTS {
                        return Err(ListError::TooManyObjects { max: MAX_OBJECTS });
                    }
                    self.object = Some(Partial::default());
                }
                "IsTruncated" => self.field = Some(Field::IsTruncated),
                "NextContinuationToken" => self.field = Some(Field::NextToken),
                _ => {}
            },
            (Some(Root::Listing), 2) if self.object.is_some() => {
                self.field = match local_name {
                    "Key" => Some(Field::Key),
                    "Size" => Some(Field::Size),
                    "LastModified" => Some(Field::LastModified),
                    "ETag" => Some(Field::ETag),
                    _ => None,
                };
            }
            (Some(Root::Error), 1) if local_name == "Code" => self.field = Some(Field::ErrorCode),
            _ => {}
        }
        self.text.clear();
        self.stack.push(name);
        Ok(())
    }

    /// The innermost element closes: store a read field, finish an object or the root.
    fn close(&mut self) -> Result<(), ListError> {
        self.stack.pop();
        if let Some(field) = self.field.take() {
            let text = core::mem::take(&mut self.text);
            self.store(field, text)?;
        } else if self.stack.len() == 1 && self.root == Some(Root::Listing) {
            if let Some(object) = self.object.take() {
                self.page.objects.push(ListedObject {
                    key: object.key.ok_or(ListError::Missing("Key"))?,
                    size: object.size.ok_or(ListError::Missing("Size"))?,
                    last_modified: object
                        .last_modified
                        .ok_or(ListError::Missing("LastModified"))?,
                    etag: object.etag,
                });
            }
        }
        if self.stack.is_empty() {
            self.root_closed = true;
        }
        Ok(())
    }

    fn store(&mut self, field: Field, text: String) -> Result<(), ListError> {
        let invalid = || ListError::InvalidValue(field.name());
        let once = |slot_full: bool| {
            if slot_full {
                Err(ListError::Duplicate(field.name()))
            } else {
                Ok(())
            }
        };
        let trimmed = text.trim_matches(|c: char| c.is_ascii_whitespace());
        match field {
            Field::IsTruncated => {
                once(self.truncated_seen)?;
                self.truncated_seen = true;
                self.page.is_truncated = match trimmed {
                    "true" => true,
                    "false" => false,
                    _ => return Err(invalid()),
                };
            }
            Field::NextToken => {
                once(self.page.next_continuation_token.is_some())?;
                if trimmed.is_empty() {
                    return Err(invalid());
                }
                self.page.next_continuation_token = Some(trimmed.to_owned());
            }
            Field::ErrorCode => {
                let code: String = trimmed
                    .chars()
                    .filter(char::is_ascii_alphanumeric)
                    .take(64)
                    .collect();
                self.error_code = Some(code);
            }
            Field::Key | Field::Size | Field::LastModified | Field::ETag => {
                let Some(object) = self.object.as_mut() else {
                    return Ok(());
                };
                match field {
                    Field::Key => {
                        once(object.key.is_some())?;
                        if text.is_empty() {
                            return Err(invalid());
                        }
                        object.key = Some(text);
                    }
                    Field::Size => {
                        once(object.size.is_some())?;
                        if trimmed.is_empty() || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(invalid());
                        }
                        object.size = Some(trimmed.parse().map_err(|_| invalid())?);
                    }
                    Field::LastModified => {
                        once(object.last_modified.is_some())?;
                        // S3 writes `2009-10-12T17:50:30.000Z`; RFC 3339 parsers also take a
                        // lower-case `t` and `z`, which no S3 server sends.
                        if !trimmed.bytes().all(|b| {
                            b.is_ascii_digit()
                                || matches!(b, b'-' | b'+' | b':' | b'.' | b'T' | b'Z')
                        }) {
                            return Err(invalid());
                        }
                        object.last_modified =
                            Some(OffsetDateTime::parse(trimmed, &Rfc3339).map_err(|_| invalid())?);
                    }
                    _ => {
                        once(object.etag.is_some())?;
                        object.etag = Some(trimmed.to_owned());
                    }
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<ListPage, ListError> {
        if self.root == Some(Root::Error) {
            return Err(ListError::ErrorResponse {
                code: self.error_code.unwrap_or_default(),
            });
        }
        if self.page.is_truncated && self.page.next_continuation_token.is_none() {
            return Err(ListError::Missing("NextContinuationToken"));
        }
        Ok(self.page)
    }
}

/// Appends `raw` with its character and predefined entity references decoded.
fn decode_into(out: &mut String, raw: &str) -> Result<(), &'static str> {
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or(""));
        let after = rest.get(amp.saturating_add(1)..).unwrap_or("");
        let semi = after
            .get(..after.len().min(12))
            .and_then(|head| head.find(';'))
            .ok_or("unterminated reference")?;
        let name = after.get(..semi).unwrap_or("");
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                // XML 1.0 §4.1: `&#` digits `;` or `&#x` hex digits `;`, nothing else (no sign,
                // no space: `from_str_radix` alone would take `+65`).
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    (!hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
                        .then(|| u32::from_str_radix(hex, 16).ok())
                        .flatten()
                } else if let Some(dec) = name.strip_prefix('#') {
                    (!dec.is_empty() && dec.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| dec.parse().ok())
                        .flatten()
                } else {
                    return Err("unknown entity");
                };
                // No control character through a reference (NUL, C0, DEL, C1): object keys
                // with them are not ours, and they would reach logs and file names.
                code.and_then(char::from_u32)
                    .filter(|c| !c.is_control())
                    .ok_or("invalid character reference")?
            }
        };
        out.push(c);
        rest = after.get(semi.saturating_add(1)..).unwrap_or("");
    }
    out.push_str(rest);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// S3 API Reference, "ListObjectsV2", Examples, "Example 1: Listing keys" (response), with
    /// the example's `...` placeholders for further objects left out.
    const AWS_EXAMPLE_1: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
    <Name>bucket</Name>
    <Prefix/>
    <KeyCount>205</KeyCount>
    <MaxKeys>1000</MaxKeys>
    <IsTruncated>false</IsTruncated>
    <Contents>
        <Key>my-image.jpg</Key>
        <LastModified>2009-10-12T17:50:30.000Z</LastModified>
        <ETag>"fba9dede5f27731c9771645a39863328"</ETag>
        <Size>434234</Size>
        <StorageClass>STANDARD</StorageClass>
    </Contents>
</ListBucketResult>"#;

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    #[test]
    fn aws_example_1() {
        let page = ListPage::parse(AWS_EXAMPLE_1).unwrap();
        assert!(!page.is_truncated);
        assert_eq!(page.next_continuation_token, None);
        assert_eq!(
            page.objects,
            [ListedObject {
                key: "my-image.jpg".into(),
                size: 434_234,
                // 2009-10-12T17:50:30Z
                last_modified: at(1_255_369_830),
                etag: Some("\"fba9dede5f27731c9771645a39863328\"".into()),
            }]
        );
    }

    /// A truncated page as S3 writes it (element order of the ListObjectsV2 response syntax;
    /// the token is base64 like S3's), with an `Owner`, entity references in a key and the
    /// quotes of the ETag escaped as s3s-fs writes them.
    #[test]
    fn truncated_page_with_continuation_token() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
            <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
            <Name>uploads</Name><Prefix>uploads/</Prefix>\
            <ContinuationToken>b2xkLXRva2Vu</ContinuationToken>\
            <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>\
            <KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>\
            <Contents><Key>uploads/ab/Фото &amp; &lt;1&gt; &#x1F600;&#233;.jpg</Key>\
            <LastModified>2024-05-01T12:00:00Z</LastModified>\
            <ETag>&quot;70ee1738b6b21e2c8a43f3a5ab0eee71&quot;</ETag><Size>11</Size>\
            <Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID>\
            <DisplayName>someone</DisplayName></Owner>\
            <StorageClass>STANDARD</StorageClass></Contents>\
            <Contents><Key> spaced key </Key><Size>0</Size>\
            <LastModified>2024-05-01T12:00:01.5+02:00</LastModified></Contents>\
            </ListBucketResult>";
        let page = ListPage::parse(body).unwrap();
        assert!(page.is_truncated);
        assert_eq!(
            page.next_continuation_token.as_deref(),
            Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=")
        );
        assert_eq!(page.objects.len(), 2);
        assert_eq!(page.objects[0].key, "uploads/ab/Фото & <1> 😀é.jpg");
        assert_eq!(page.objects[0].size, 11);
        assert_eq!(page.objects[0].last_modified, at(1_714_564_800));
        assert_eq!(
            page.objects[0].etag.as_deref(),
            Some("\"70ee1738b6b21e2c8a43f3a5ab0eee71\"")
        );
        // Keys are verbatim; no ETag is allowed; offsets are honoured.
        assert_eq!(page.objects[1].key, " spaced key ");
        assert_eq!(page.objects[1].size, 0);
        assert_eq!(page.objects[1].etag, None);
        assert_eq!(
            page.objects[1].last_modified,
            at(1_714_564_800 - 7200 + 1) + time::Duration::milliseconds(500)
        );
        // An empty listing.
        let empty = ListPage::parse(
            "<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount>\
             <IsTruncated>false</IsTruncated></ListBucketResult>",
        )
        .unwrap();
        assert_eq!(empty, ListPage::default());
        // CDATA and comments.
        let page = ListPage::parse(
            "<!-- c --><ListBucketResult><Contents><Key><![CDATA[a&b<c]]></Key>\
             <!-- x --><Size> 5 </Size><LastModified>2024-05-01T12:00:00Z</LastModified>\
             </Contents></ListBucketResult>",
        )
        .unwrap();
        assert_eq!(page.objects[0].key, "a&b<c");
        assert_eq!(page.objects[0].size, 5);
    }

    #[test]
    fn s3_error_bodies_are_typed() {
        // S3 API Reference, "Error responses": the REST error body.
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>\
            <Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message>\
            <Resource>/mybucket</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>";
        assert_eq!(
            ListPage::parse(body),
            Err(ListError::ErrorResponse {
                code: "NoSuchBucket".into()
            })
        );
        let code = format!(
            "<Error><Code>Bad Code\u{1F600}{}</Code></Error>",
            "x".repeat(100)
        );
        match ListPage::parse(&code) {
            Err(ListError::ErrorResponse { code }) => {
                assert_eq!(code.len(), 64);
                assert!(code.starts_with("BadCodexxx"));
            }
            other => panic!("{other:?}"),
        }
    }

    fn contents(inner: &str) -> String {
        format!("<ListBucketResult><Contents>{inner}</Contents></ListBucketResult>")
    }

    const OK_FIELDS: &str =
        "<Key>k</Key><Size>1</Size><LastModified>2024-05-01T12:00:00Z</LastModified>";

    #[test]
    fn missing_duplicate_and_invalid_fields() {
        assert!(ListPage::parse(&contents(OK_FIELDS)).is_ok());
        let cases: &[(String, ListError)] = &[
            (
                contents("<Size>1</Size><LastModified>2024-05-01T12:00:00Z</LastModified>"),
                ListError::Missing("Key"),
            ),
            (
                contents("<Key>k</Key><LastModified>2024-05-01T12:00:00Z</LastModified>"),
                ListError::Missing("Size"),
            ),
            (contents("<Key>k</Key><Size>1</Size>"), ListError::Missing("LastModified")),
            (contents(&format!("{OK_FIELDS}<Key>j</Key>")), ListError::Duplicate("Key")),
            (
                contents(&format!("{OK_FIELDS}<ETag>a</ETag><ETag>b</ETag>")),
                ListError::Duplicate("ETag"),
            ),
            (
                contents("<Key>k</Key><Size>-1</Size><LastModified>2024-05-01T12:00:00Z</LastModified>"),
                ListError::InvalidValue("Size"),
            ),
            (
                contents("<Key>k</Key><Size>18446744073709551616</Size><LastModified>2024-05-01T12:00:00Z</LastModified>"),
                ListError::InvalidValue("Size"),
            ),
            (
                contents("<Key>k</Key><Size>1</Size><LastModified>yesterday</LastModified>"),
                ListError::InvalidValue("LastModified"),
            ),
            (contents("<Key></Key>"), ListError::InvalidValue("Key")),
            (contents("<Key><b/>k</Key>"), ListError::InvalidValue("Key")),
            (
                contents(&format!("<Key>{}</Key>", "k".repeat(MAX_TEXT + 1))),
                ListError::InvalidValue("Key"),
            ),
            (
                "<ListBucketResult><IsTruncated>yes</IsTruncated></ListBucketResult>".into(),
                ListError::InvalidValue("IsTruncated"),
            ),
            (
                "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>".into(),
                ListError::Missing("NextContinuationToken"),
            ),
            (
                "<ListBucketResult><IsTruncated>false</IsTruncated><IsTruncated>false</IsTruncated></ListBucketResult>".into(),
                ListError::Duplicate("IsTruncated"),
            ),
            ("<ListAllMyBucketsResult/>".into(), ListError::NotAListing),
        ];
        for (body, want) in cases {
            assert_eq!(ListPage::parse(body).as_ref(), Err(want), "{body}");
        }
    }

    #[test]
    fn malformed_xml_is_refused() {
        for body in [
            "",
            "   ",
            "plain text",
            "<ListBucketResult>",
            "<ListBucketResult></Contents>",
            "<ListBucketResult><Contents></ListBucketResult>",
            "<ListBucketResult></ListBucketResult><ListBucketResult/>",
            "<ListBucketResult/>trailing",
            "<ListBucketResult",
            "<ListBucketResult a='1>",
            "<>",
            "<ListBucketResult><!-- open",
            "<ListBucketResult><![CDATA[ open",
            "<?xml version='1.0'",
            "<!DOCTYPE x [<!ENTITY a 'b'>]><ListBucketResult/>",
            "<ListBucketResult><Contents><Key>&bogus;</Key></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>&#0;</Key></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>&#xD800;</Key></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>&amp</Key></Contents></ListBucketResult>",
            // Issue 20 (13): signs, empty digits, control characters through references.
            "<ListBucketResult><Contents><Key>&#+65;</Key></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>&#x+41;</Key></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>&#;</Key></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>&#x;</Key></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>&#X41;</Key></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>a&#10;b</Key></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>a&#x1b;b</Key></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>a&#127;b</Key></Contents></ListBucketResult>",
            "<ListBucketResult><Contents><Key>a&#x85;b</Key></Contents></ListBucketResult>",
            "<ListBucketResult><a<b/></ListBucketResult>",
        ] {
            assert!(
                matches!(ListPage::parse(body), Err(ListError::Malformed { .. })),
                "{body:?}: {:?}",
                ListPage::parse(body)
            );
        }
        // Lower-case date letters: RFC 3339 parsers take them, S3 never writes them.
        assert_eq!(
            ListPage::parse(
                "<ListBucketResult><Contents><Key>a</Key><Size>1</Size>\
                 <LastModified>2024-05-01t12:00:00z</LastModified></Contents></ListBucketResult>"
            ),
            Err(ListError::InvalidValue("LastModified"))
        );
        // Every strict prefix of a valid body is refused, and none panics.
        for end in 0..AWS_EXAMPLE_1.len() {
            if let Some(prefix) = AWS_EXAMPLE_1.get(..end) {
                assert!(ListPage::parse(prefix).is_err(), "{end}");
            }
        }
    }

    #[test]
    fn hostile_bodies_are_bounded() {
        // Deep nesting: refused at the depth limit, without recursion.
        let deep = "<ListBucketResult>".to_owned() + &"<a>".repeat(200_000);
        assert_eq!(
            ListPage::parse(&deep),
            Err(ListError::TooDeep { max: MAX_DEPTH })
        );
        let deep_root = "<a>".repeat(200_000);
        assert_eq!(ListPage::parse(&deep_root), Err(ListError::NotAListing));
        // Huge: refused before reading.
        let huge = format!(
            "<ListBucketResult>{}</ListBucketResult>",
            " ".repeat(MAX_LIST_BODY)
        );
        assert_eq!(
            ListPage::parse(&huge),
            Err(ListError::TooLarge { max: MAX_LIST_BODY })
        );
        // Just under the limit, mostly an unread element: accepted in one pass.
        let big = format!(
            "<ListBucketResult><Name>{}</Name></ListBucketResult>",
            "n".repeat(MAX_LIST_BODY - 100)
        );
        assert_eq!(ListPage::parse(&big), Ok(ListPage::default()));
        // Too many objects.
        let many = format!(
            "<ListBucketResult>{}</ListBucketResult>",
            format!("<Contents>{OK_FIELDS}</Contents>").repeat(MAX_OBJECTS + 1)
        );
        assert_eq!(
            ListPage::parse(&many),
            Err(ListError::TooManyObjects { max: MAX_OBJECTS })
        );
        // Many unterminated-looking starts: linear, refused.
        let starts = "<ListBucketResult>".to_owned() + &"<!--".repeat(100_000);
        assert!(matches!(
            ListPage::parse(&starts),
            Err(ListError::Malformed { .. })
        ));
        let attrs = format!("<ListBucketResult {}>", "a='1' ".repeat(100_000));
        assert!(matches!(
            ListPage::parse(&attrs),
            Err(ListError::Malformed { .. })
        ));
        // Errors carry no body text.
        let secret = "<ListBucketResult><Contents><Key>secret-name</Key><Size>x</Size></Contents></ListBucketResult>";
        let err = ListPage::parse(secret).unwrap_err();
        assert!(!format!("{err} {err:?}").contains("secret-name"));
    }
}
