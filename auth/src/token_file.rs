//! Static bearer tokens from kube-apiserver's `--token-auth-file`: a CSV file with one
//! `token,user,uid[,"group1,group2"]` record per line, read the way kube reads it (Go's
//! `encoding/csv` with a variable number of fields: RFC 4180 quoting, `""` for a quote inside a
//! quoted field, quoted fields may span lines, blank lines skipped, no whitespace trimming).
//!
//! One difference, on the safe side: a line starting with `#` is a comment here. Kube has no
//! comments, so such a line there is a record whose token starts with `#`; here that token is
//! simply not accepted.
//!
//! Tokens are kept only as SHA-256 digests and compared in constant time, so neither the time a
//! lookup takes nor a memory dump of the authenticator tells a token.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::user::UserInfo;

/// Why a token file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be opened or read.
    #[error("token file {path}: {source}")]
    ReadFile {
        /// The file.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// A line is not valid CSV (kube's wording: `parse error on line L, column C: …`).
    #[error("token file: parse error on line {line}, column {column}: {reason}")]
    ParseCsv {
        /// The 1-based line of the error.
        line: usize,
        /// The 1-based byte column of the error.
        column: usize,
        /// Go's `encoding/csv` message.
        reason: &'static str,
    },
    /// A record has fewer than the three required columns.
    #[error(
        "token file line {line}: must have at least 3 columns (token, user name, user uid), found {found}"
    )]
    TooFewColumns {
        /// The 1-based line where the record starts.
        line: usize,
        /// How many columns it has.
        found: usize,
    },
}

/// `Result` of this module.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The tokens of a token file and the users they stand for.
#[derive(Clone, Default)]
pub struct TokenFile {
    entries: Vec<([u8; 32], UserInfo)>,
    warnings: Vec<String>,
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field(
                "users",
                &self
                    .entries
                    .iter()
                    .map(|(_, u)| &u.name)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl TokenFile {
    /// Reads and parses the file at `path`.
    pub fn from_path(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ReadFile {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text)
    }

    /// Parses the file's content. A record with an empty token is skipped and a repeated token
    /// replaces the earlier one, as in kube; both leave a line in [`TokenFile::warnings`].
    pub fn parse(text: &str) -> Result<Self> {
        let mut out = Self::default();
        for record in read_csv(text)? {
            let Record { line, fields } = record;
            if fields.len() < 3 {
                return Err(Error::TooFewColumns {
                    line,
                    found: fields.len(),
                });
            }
            if fields[0].is_empty() {
                out.warnings
                    .push(format!("token file line {line}: empty token skipped"));
                continue;
            }
            let user = UserInfo {
                name: fields[1].clone(),
                uid: fields[2].clone(),
                // kube: strings.Split(record[3], ","), kept as is; an empty field means no group.
                groups: fields.get(3).map_or_else(Vec::new, |g| {
                    g.split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                }),
                ..UserInfo::default()
            };
            let digest = digest(&fields[0]);
            if let Some(slot) = out.entries.iter_mut().find(|(d, _)| *d == digest) {
                out.warnings.push(format!(
                    "token file line {line}: duplicate token, replaces the earlier one"
                ));
                slot.1 = user;
            } else {
                out.entries.push((digest, user));
            }
        }
        Ok(out)
    }

    /// The user a bearer token stands for. Every entry is compared, in constant time, whatever
    /// the token.
    pub fn authenticate(&self, token: &str) -> Option<&UserInfo> {
        let presented = digest(token);
        let mut found = 0u32;
        for (i, (d, _)) in self.entries.iter().enumerate() {
            let index = u32::try_from(i + 1).unwrap_or(u32::MAX);
            found = u32::conditional_select(&found, &index, d.ct_eq(&presented));
        }
        let found = usize::try_from(found).ok()?;
        found
            .checked_sub(1)
            .and_then(|i| self.entries.get(i))
            .map(|(_, u)| u)
    }

    /// How many tokens the file holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file holds no token.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What kube would log while reading the file (empty or duplicate tokens).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// One CSV record and the line it starts on.
struct Record {
    line: usize,
    fields: Vec<String>,
}

const ERR_BARE_QUOTE: &str = "bare \" in non-quoted-field";
const ERR_QUOTE: &str = "extraneous or missing \" in quoted-field";

/// Go's `encoding/csv` reader with `FieldsPerRecord = -1`, `LazyQuotes = false`,
/// `TrimLeadingSpace = false`, and `Comment = '#'`.
fn read_csv(text: &str) -> Result<Vec<Record>> {
    let lines: Vec<&str> = text
        .split_inclusive('\n')
        .map(|l| {
            let l = l.strip_suffix('\n').unwrap_or(l);
            l.strip_suffix('\r').unwrap_or(l)
        })
        .collect();
    let mut records = Vec::new();
    let mut n = 0;
    while n < lines.len() {
        let start = n + 1;
        let line = lines[n];
        n += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = Vec::new();
        let mut cur_line = start;
        let mut rest: &str = line;
        let mut offset = 0; // byte offset of `rest` within the current line
        loop {
            if let Some(quoted) = rest.strip_prefix('"') {
                let mut field = String::new();
                let mut body = quoted;
                let mut col = offset + 1;
                loop {
                    match body.find('"') {
                        Some(i) => {
                            field.push_str(&body[..i]);
                            let after = &body[i + 1..];
                            col += i + 1;
                            if let Some(more) = after.strip_prefix('"') {
                                field.push('"');
                                body = more;
                                col += 1;
                            } else if let Some(more) = after.strip_prefix(',') {
                                fields.push(std::mem::take(&mut field));
                                rest = more;
                                offset = col + 1;
                                break;
                            } else if after.is_empty() {
                                fields.push(std::mem::take(&mut field));
                                rest = "";
                                offset = usize::MAX;
                                break;
                            } else {
                                // Go reports the column of the closing quote.
                                return Err(Error::ParseCsv {
                                    line: cur_line,
                                    column: col,
                                    reason: ERR_QUOTE,
                                });
                            }
                        }
                        None => {
                            // The quoted field goes on on the next line.
                            field.push_str(body);
                            field.push('\n');
                            let Some(next) = lines.get(n) else {
                                return Err(Error::ParseCsv {
                                    line: cur_line,
                                    column: col + body.len() + 1,
                                    reason: ERR_QUOTE,
                                });
                            };
                            n += 1;
                            cur_line += 1;
                            body = next;
                            col = 0;
                        }
                    }
                }
                if offset == usize::MAX {
                    break;
                }
            } else {
                let (field, more) = match rest.find(',') {
                    Some(i) => (&rest[..i], Some(&rest[i + 1..])),
                    None => (rest, None),
                };
                if let Some(q) = field.find('"') {
                    return Err(Error::ParseCsv {
                        line: cur_line,
                        column: offset + q + 1,
                        reason: ERR_BARE_QUOTE,
                    });
                }
                fields.push(field.to_string());
                match more {
                    Some(more) => {
                        offset += field.len() + 1;
                        rest = more;
                    }
                    None => break,
                }
            }
        }
        records.push(Record {
            line: start,
            fields,
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kube_format_with_quoted_groups() {
        let f = TokenFile::parse(
            "# admins\n\
             abc123,alice,1001,\"system:masters,dev\"\n\
             \n\
             def456,bob,1002\r\n\
             ghi789,carol,1003,ops,ignored-extra\n",
        )
        .unwrap();
        assert_eq!(f.len(), 3);
        let alice = f.authenticate("abc123").unwrap();
        assert_eq!(alice.name, "alice");
        assert_eq!(alice.uid, "1001");
        assert_eq!(alice.groups, ["system:masters", "dev"]);
        assert!(f.authenticate("def456").unwrap().groups.is_empty());
        assert_eq!(f.authenticate("ghi789").unwrap().groups, ["ops"]);
        assert!(f.authenticate("abc12").is_none());
        assert!(f.authenticate("").is_none());
        assert!(f.warnings().is_empty());
    }

    #[test]
    fn quotes_escape_and_span_lines_like_go_csv() {
        let f = TokenFile::parse("\"to,ken\",\"Mr \"\"Q\"\"\",7,\"a,\nb\"\n").unwrap();
        let u = f.authenticate("to,ken").unwrap();
        assert_eq!(u.name, "Mr \"Q\"");
        assert_eq!(u.groups, ["a", "\nb"]);
    }

    #[test]
    fn whitespace_is_kept_as_kube_keeps_it() {
        let f = TokenFile::parse("tok, alice ,1,\"a, b\"\n").unwrap();
        let u = f.authenticate("tok").unwrap();
        assert_eq!(u.name, " alice ");
        assert_eq!(u.groups, ["a", " b"]);
        assert!(f.authenticate(" tok").is_none());
    }

    #[test]
    fn errors_name_the_line() {
        let e = TokenFile::parse("a,b,c\n\nonly,two\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "token file line 3: must have at least 3 columns (token, user name, user uid), found 2"
        );
        let e = TokenFile::parse("a,b,c\nto\"k,u,1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "token file: parse error on line 2, column 3: bare \" in non-quoted-field"
        );
        let e = TokenFile::parse("a,b,c\n\"tok\"x,u,1\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "token file: parse error on line 2, column 5: extraneous or missing \" in quoted-field"
        );
        let e = TokenFile::parse("\"open,u,1\n").unwrap_err();
        assert!(
            matches!(
                e,
                Error::ParseCsv {
                    line: 1,
                    reason: ERR_QUOTE,
                    ..
                }
            ),
            "{e}"
        );
        // A line of spaces is a one-column record in kube, not a blank line.
        let e = TokenFile::parse("   \n").unwrap_err();
        assert!(
            matches!(e, Error::TooFewColumns { line: 1, found: 1 }),
            "{e}"
        );
    }

    #[test]
    fn empty_and_duplicate_tokens_warn_as_kube_does() {
        let f = TokenFile::parse(",nobody,0\ntok,first,1\ntok,second,2\n").unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f.authenticate("tok").unwrap().name, "second");
        assert_eq!(f.warnings().len(), 2);
        assert!(f.warnings()[0].contains("line 1"));
        assert!(f.warnings()[1].contains("line 3"));
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let f = TokenFile::parse("s3cr3t,alice,1\n").unwrap();
        let shown = format!("{f:?}");
        assert!(shown.contains("alice"));
        assert!(!shown.contains("s3cr3t"));
    }

    #[test]
    fn reads_from_a_file() {
        let dir = std::env::temp_dir().join(format!("cellfed-auth-tokens-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens.csv");
        std::fs::write(&path, "tok,alice,1\n").unwrap();
        assert_eq!(TokenFile::from_path(&path).unwrap().len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
        let e = TokenFile::from_path(&path).unwrap_err();
        assert!(e.to_string().contains("tokens.csv"), "{e}");
    }
}
