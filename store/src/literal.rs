//! SQL literals for the statements the writer sends as one multi-statement text query (see
//! `write::packed`): binding parameters needs one prepared statement per round trip, so the two
//! round trips of a MySQL/PostgreSQL write carry their keys and values inline instead.
//!
//! Every literal is built so that no byte of the data can end it early or be read as an escape,
//! whatever the session's settings: MySQL gets hex literals (`X'…'`, with the `utf8mb4`
//! introducer for text), PostgreSQL gets dollar-quoted strings with a tag absent from the text
//! and bytea in hex input format inside `$$…$$` (hex digits never contain `$`).

use crate::dialect::Backend;

/// `bytes` as lowercase hex digits (by table: values are megabytes at times).
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// A text literal (a key).
pub(crate) fn text(backend: Backend, s: &str) -> String {
    match backend {
        Backend::MySql => format!("_utf8mb4 X'{}'", hex(s.as_bytes())),
        Backend::Postgres | Backend::Sqlite => {
            // The first tag of `$c$`, `$c0$`, `$c1$`, … that does not occur in the text, not
            // even across its end (`a$c` followed by `$c$` would close at `$c$`).
            let mut tag = "$c$".to_owned();
            let mut n = 0_u32;
            while format!("{s}{tag}").find(&tag) != Some(s.len()) {
                tag = format!("$c{n}$");
                n += 1;
            }
            format!("{tag}{s}{tag}")
        }
    }
}

/// A blob literal (a value); `None` is SQL `NULL`.
pub(crate) fn blob(backend: Backend, bytes: Option<&[u8]>) -> String {
    let Some(bytes) = bytes else {
        return "NULL".to_owned();
    };
    match backend {
        Backend::MySql | Backend::Sqlite => format!("X'{}'", hex(bytes)),
        Backend::Postgres => format!("$$\\x{}$$::bytea", hex(bytes)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mysql_literals_are_hex() {
        assert_eq!(text(Backend::MySql, "/a'b"), "_utf8mb4 X'2f612762'");
        assert_eq!(text(Backend::MySql, ""), "_utf8mb4 X''");
        assert_eq!(blob(Backend::MySql, Some(&[0, 255, b'\\'])), "X'00ff5c'");
        assert_eq!(blob(Backend::MySql, Some(&[])), "X''");
        assert_eq!(blob(Backend::MySql, None), "NULL");
    }

    #[test]
    fn postgres_text_picks_a_dollar_tag_the_text_does_not_contain() {
        assert_eq!(
            text(Backend::Postgres, "/registry/a'b\\c"),
            "$c$/registry/a'b\\c$c$"
        );
        assert_eq!(text(Backend::Postgres, "x$c$y"), "$c0$x$c$y$c0$");
        assert_eq!(text(Backend::Postgres, "$c$$c0$"), "$c1$$c$$c0$$c1$");
        // A `$` at the very end cannot merge with the closing tag into another tag.
        assert_eq!(text(Backend::Postgres, "a$"), "$c$a$$c$");
        assert_eq!(text(Backend::Postgres, "a$c"), "$c0$a$c$c0$");
    }

    #[test]
    fn postgres_blob_is_hex_bytea() {
        assert_eq!(
            blob(Backend::Postgres, Some(b"\x00\x01$")),
            "$$\\x000124$$::bytea"
        );
        assert_eq!(blob(Backend::Postgres, Some(&[])), "$$\\x$$::bytea");
    }
}
