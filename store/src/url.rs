//! What the store takes from its URL before handing it to sqlx: whether a SQLite URL is a
//! private in-memory database, and SQLite's durability level (`synchronous=`, which sqlx's URL
//! parser does not know).

use crate::dialect::Backend;
use crate::{Error, Result};

/// SQLite's `PRAGMA synchronous` (URL parameter `synchronous=off|normal|full|extra`, default
/// `full`). In WAL mode, `full` syncs the log on every commit, so an acknowledged write survives
/// a power loss or OS crash; `normal` syncs only at checkpoints: faster, still safe against a
/// crash of the process, but the last commits can vanish with the machine (and their revisions
/// be handed out again). See docs/store.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    Off,
    Normal,
    #[default]
    Full,
    Extra,
}

impl Synchronous {
    /// The pragma's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Synchronous::Off => "OFF",
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
            Synchronous::Extra => "EXTRA",
        }
    }
}

impl std::str::FromStr for Synchronous {
    type Err = Error;

    fn from_str(s: &str) -> Result<Synchronous> {
        match s.to_ascii_lowercase().as_str() {
            "off" | "0" => Ok(Synchronous::Off),
            "normal" | "1" => Ok(Synchronous::Normal),
            "full" | "2" => Ok(Synchronous::Full),
            "extra" | "3" => Ok(Synchronous::Extra),
            _ => Err(Error::InvalidConfig {
                reason: format!("synchronous={s:?}: use off, normal, full or extra"),
            }),
        }
    }
}

/// A store URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The URL for sqlx.
    pub url: String,
    /// A private in-memory SQLite database (every connection would be its own).
    pub in_memory: bool,
    /// SQLite's durability level (ignored elsewhere).
    pub synchronous: Synchronous,
}

/// Takes `url` apart. SQLite files are created when missing unless the URL says otherwise
/// (`mode=…`); `synchronous=` is accepted on SQLite URLs only.
pub(crate) fn parse(backend: Backend, url: &str) -> Result<Target> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut params = Vec::new();
    let mut synchronous = None;
    for param in query.split('&').filter(|p| !p.is_empty()) {
        match param.split_once('=') {
            Some(("synchronous", value)) => synchronous = Some(value.parse()?),
            _ => params.push(param.to_owned()),
        }
    }
    if backend != Backend::Sqlite {
        if synchronous.is_some() {
            return Err(Error::InvalidConfig {
                reason: "synchronous= is a SQLite setting; server databases keep their own"
                    .to_owned(),
            });
        }
        return Ok(Target {
            url: url.to_owned(),
            in_memory: false,
            synchronous: Synchronous::default(),
        });
    }
    let in_memory = url.contains(":memory:") || params.iter().any(|p| p == "mode=memory");
    if !in_memory && !params.iter().any(|p| p.starts_with("mode=")) {
        params.push("mode=rwc".to_owned());
    }
    let url = if params.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", params.join("&"))
    };
    Ok(Target {
        url,
        in_memory,
        synchronous: synchronous.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(url: &str) -> Target {
        parse(Backend::Sqlite, url).unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    #[test]
    fn sqlite_files_default_to_full_and_are_created() {
        let t = sqlite("sqlite:///var/lib/cellfed/state.db");
        assert_eq!(t.url, "sqlite:///var/lib/cellfed/state.db?mode=rwc");
        assert_eq!(t.synchronous, Synchronous::Full);
        assert!(!t.in_memory);
    }

    #[test]
    fn synchronous_is_taken_out_of_the_url() {
        let t = sqlite("sqlite://state.db?synchronous=NORMAL&mode=rw");
        assert_eq!(t.url, "sqlite://state.db?mode=rw");
        assert_eq!(t.synchronous, Synchronous::Normal);
        let t = sqlite("sqlite::memory:?synchronous=off");
        assert_eq!(t.url, "sqlite::memory:");
        assert!(t.in_memory);
        assert_eq!(t.synchronous, Synchronous::Off);
    }

    #[test]
    fn bad_or_misplaced_synchronous_is_refused() {
        assert!(parse(Backend::Sqlite, "sqlite://a.db?synchronous=fast").is_err());
        assert!(parse(Backend::MySql, "mysql://root@h/db?synchronous=normal").is_err());
        let t = parse(Backend::Postgres, "postgres://p@h/db?sslmode=disable");
        assert_eq!(
            t.map(|t| t.url).ok().as_deref(),
            Some("postgres://p@h/db?sslmode=disable")
        );
    }
}
