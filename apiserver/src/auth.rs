//! Bearer-token authentication from a static token file (kube-apiserver's `--token-auth-file`
//! format: `token,user,uid[,"group1,group2"]` per line).

use std::collections::HashMap;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

/// The accepted tokens.
#[derive(Debug, Clone, Default)]
pub struct Tokens(pub HashMap<String, User>);

/// Why a token file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// A line has fewer than three fields.
    #[error("token file line {line}: expected token,user,uid[,groups]")]
    ParseLine { line: usize },
}

impl Tokens {
    /// Parses the file's content.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        let mut out = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.splitn(4, ',').collect();
            if fields.len() < 3 || fields[0].is_empty() {
                return Err(TokenError::ParseLine { line: i + 1 });
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.trim_matches('"')
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            out.insert(
                fields[0].to_string(),
                User {
                    name: fields[1].to_string(),
                    uid: fields[2].to_string(),
                    groups,
                },
            );
        }
        Ok(Self(out))
    }
}

/// Paths anyone may read, as kube's `system:public-info-viewer` allows.
fn public(path: &str) -> bool {
    matches!(path, "/healthz" | "/livez" | "/readyz" | "/version")
}

/// Rejects requests without a known bearer token with a 401 Status.
pub async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(tokens) = &state.tokens else {
        return next.run(req).await;
    };
    if public(req.uri().path()) {
        return next.run(req).await;
    }
    let token = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match token.and_then(|t| tokens.0.get(t)) {
        Some(_) => next.run(req).await,
        None => ApiError::unauthorized().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_static_token_file() {
        let t = Tokens::parse("abc,admin,1,\"system:masters,dev\"\n# c\nxyz,bob,2\n").unwrap();
        assert_eq!(t.0["abc"].groups, vec!["system:masters", "dev"]);
        assert_eq!(t.0["xyz"].name, "bob");
        assert!(Tokens::parse("only,two").is_err());
    }
}
