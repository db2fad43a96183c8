//! ejabberd's upload layout (`mod_http_upload` with `jid_in_url: sha1`): the path of an
//! object and the file-name sanitiser it applies.

use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

use crate::crypto::hex;
use crate::storage::UploadGrant;

/// ejabberd's path: `{sha1 hex of "user@server"}/{slot ID hex}/{sanitized name}`.
///
/// From ejabberd's `src/mod_http_upload.erl` (`create_slot/7`, `make_user_string/2`,
/// `make_file_string/1`): the user directory is `str:sha(<<LUser/binary, $@, LServer/binary>>)`
/// of the normalized bare JID (empty node for a domain JID), the random directory is
/// `p1_rand:get_alphanum_string(SecretLength)` (here: the slot ID in hex), and the file name
/// goes through `replace_special_chars/1`.
pub(super) fn ejabberd_path(grant: &UploadGrant) -> String {
    let jid = grant.requester();
    let node = jid.node().map_or("", |n| n.as_str());
    let user = format!("{}@{}", node, jid.domain().as_str());
    format!(
        "{}/{}/{}",
        hex(&sha1(user.as_bytes())),
        hex(&grant.slot_id()),
        ejabberd_sanitize(grant.filename().as_str())
    )
}

/// ejabberd's `replace_special_chars/1`:
/// `re:replace(S, "[^\\p{Xan}_.-]", "_", [unicode, global])`. PCRE's `\p{Xan}` is "general
/// category L (letter) or N (number)", so every other character (punctuation, spaces,
/// symbols, combining marks) becomes one `_`.
pub(super) fn ejabberd_sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '_' || c == '.' || c == '-' || is_letter_or_number(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Unicode general category L or N, from the `unicode-properties` tables (the crate
/// `stringprep`, and so every JID, already builds on). ejabberd answers from the PCRE tables
/// of its Erlang/OTP build, so a character assigned after that build's Unicode version may be
/// judged differently there.
fn is_letter_or_number(c: char) -> bool {
    matches!(
        c.general_category_group(),
        GeneralCategoryGroup::Letter | GeneralCategoryGroup::Number
    )
}

/// SHA-1, only for ejabberd's user directory name, which is not a security boundary: the
/// directory is public in every URL.
fn sha1(data: &[u8]) -> [u8; 20] {
    use sha1::Digest;
    sha1::Sha1::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ejabberd_sanitizer() {
        for (name, expected) in [
            ("Testä,ü.jpg", "Testä_ü.jpg"),
            ("हिन्दी.txt", "ह_न_द_.txt"),
            ("a+b c(1)~.tar.gz", "a_b_c_1__.tar.gz"),
            ("e\u{301} \u{24B6} ٣ Ⅻ ² é.x", "e____٣_Ⅻ_²_é.x"),
            (
                "Перечень юр лиц и услуг.xlsx",
                "Перечень_юр_лиц_и_услуг.xlsx",
            ),
            ("my-file_v2.0", "my-file_v2.0"),
            ("%2e%2e", "_2e_2e"),
        ] {
            assert_eq!(ejabberd_sanitize(name), expected, "{name}");
        }
    }

    #[test]
    fn letters_and_numbers_by_general_category() {
        assert!(!is_letter_or_number('\u{93F}')); // DEVANAGARI VOWEL SIGN I (Mc)
        assert!(!is_letter_or_number('\u{5B0}')); // HEBREW POINT SHEVA (Mn)
        assert!(!is_letter_or_number('\u{24B6}')); // CIRCLED LATIN CAPITAL LETTER A (So)
        assert!(is_letter_or_number('\u{5D0}')); // HEBREW LETTER ALEF (Lo)
        assert!(is_letter_or_number('\u{2160}')); // ROMAN NUMERAL ONE (Nl)
        assert!(is_letter_or_number('\u{B2}')); // SUPERSCRIPT TWO (No)
        assert!(!is_letter_or_number('\u{1F600}')); // GRINNING FACE (So)
        assert!(!is_letter_or_number(' '));
        // Unassigned code points are no letters (`\p{Xan}` does not match them either).
        assert!(!is_letter_or_number('\u{E0080}'));
    }

    #[test]
    fn sha1_fips_vectors() {
        assert_eq!(hex(&sha1(b"")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(
            hex(&sha1(b"abc")),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
        assert_eq!(
            hex(&sha1(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1"
        );
        assert_eq!(
            hex(&sha1(&[b'a'; 1_000_000])),
            "34aa973cd4c4daa4f61eeb2bdbad27316534016f"
        );
    }
}
