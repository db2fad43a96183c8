//! Small helpers over `minidom` shared by the stanza modules (crate-private).

use minidom::rxml::{Namespace, NcName};
use minidom::Element;

/// A new empty element.
pub(crate) fn el(name: &str, ns: &str) -> Element {
    Element::bare(name, ns)
}

/// Sets an attribute; names are crate constants, so an invalid name cannot occur, and
/// would be skipped rather than panic.
pub(crate) fn set(el: &mut Element, name: &str, value: impl Into<String>) {
    if let Ok(name) = NcName::try_from(name) {
        el.set_attr(Namespace::NONE, name, value.into());
    }
}

/// Builder-style [`set`].
pub(crate) fn with(mut e: Element, name: &str, value: impl Into<String>) -> Element {
    set(&mut e, name, value);
    e
}

/// An element with one text child.
pub(crate) fn text_el(name: &str, ns: &str, text: impl Into<String>) -> Element {
    let mut e = el(name, ns);
    e.append_text(text.into());
    e
}

/// The first child with this name and namespace.
pub(crate) fn child<'a>(e: &'a Element, name: &str, ns: &str) -> Option<&'a Element> {
    e.children().find(|c| c.name() == name && c.has_ns(ns))
}

/// Whether `e` is deeper than `max_depth` levels (itself at level 1) or holds more than
/// `max_elements` elements in all. Iterative, and stops at the first limit passed, so its
/// cost is bounded by the limits, not by the input.
pub(crate) fn exceeds(e: &Element, max_depth: usize, max_elements: usize) -> bool {
    let mut stack = vec![e.children()];
    let mut count = 1usize;
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(child) => {
                count += 1;
                if count > max_elements || stack.len() >= max_depth {
                    return true;
                }
                stack.push(child.children());
            }
            None => {
                stack.pop();
            }
        }
    }
    false
}

/// Copies an element with another namespace on the element itself (children keep theirs).
pub(crate) fn renamespace(e: Element, ns: &str) -> Element {
    if e.has_ns(ns) {
        return e;
    }
    let mut out = Element::bare(e.name(), ns);
    for ((attr_ns, name), value) in e.attrs() {
        out.set_attr(attr_ns.clone(), name.clone(), value.clone());
    }
    let mut e = e;
    for node in e.take_nodes() {
        out.append_node(node);
    }
    out
}

/// The base64 text of an element (XEP-0300 digests), whitespace between the characters
/// skipped as XML line-wrapping puts it there.
pub(crate) fn base64_text(e: &Element) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine as _;
    let text: String = e
        .text()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(text)
}
