//! What identifies the account: the credentials and the target URL.
//!
//! The credentials never leave the client: they come only from the environment, neither
//! `Debug` nor `Display` shows them, text a server echoes back is scrubbed of them, and a
//! URL carrying them is refused without being echoed. The target is parsed as strictly,
//! for the same reason: https only (http for a loopback sandbox), and only relative API
//! paths under it, so the credentials go to the account and nowhere else.

use std::fmt;
use std::net::IpAddr;

use reqwest::Url;

use super::ClientError;

/// The environment variables credentials come from. They are never taken from arguments,
/// which would leave them in shell history and process listings.
pub(crate) const API_KEY_VAR: &str = "HAPPYFOX_API_KEY";
pub(crate) const AUTH_CODE_VAR: &str = "HAPPYFOX_AUTH_CODE";

/// The API key and auth code. Neither `Debug` nor `Display` shows them, so a stray `{:?}`
/// in a log line or a panic cannot leak them.
#[derive(Clone)]
pub struct Credentials {
    api_key: String,
    auth_code: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credentials { api_key: [redacted], auth_code: [redacted] }")
    }
}

impl fmt::Display for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted credentials]")
    }
}

impl Credentials {
    /// Reads `HAPPYFOX_API_KEY` and `HAPPYFOX_AUTH_CODE`, naming whichever is missing.
    pub(crate) fn from_env() -> Result<Credentials, ClientError> {
        let get = |var| std::env::var(var).ok().filter(|v| !v.trim().is_empty());
        match (get(API_KEY_VAR), get(AUTH_CODE_VAR)) {
            (Some(key), Some(code)) => Credentials::new(key, code),
            (key, code) => {
                let mut missing = Vec::new();
                if key.is_none() {
                    missing.push(API_KEY_VAR);
                }
                if code.is_none() {
                    missing.push(AUTH_CODE_VAR);
                }
                Err(ClientError::MissingCredentials { missing })
            }
        }
    }

    /// Surrounding whitespace (a frequent copy-paste accident) is dropped. A key with a
    /// colon cannot be a Basic-auth user name.
    pub fn new(
        api_key: impl Into<String>,
        auth_code: impl Into<String>,
    ) -> Result<Credentials, ClientError> {
        let api_key = api_key.into().trim().to_owned();
        let auth_code = auth_code.into().trim().to_owned();
        if api_key.is_empty() {
            return Err(ClientError::MissingCredentials {
                missing: vec![API_KEY_VAR],
            });
        }
        if auth_code.is_empty() {
            return Err(ClientError::MissingCredentials {
                missing: vec![AUTH_CODE_VAR],
            });
        }
        if api_key.contains(':') {
            return Err(ClientError::BadCredentials {
                var: API_KEY_VAR,
                reason: "it contains ':', which no HappyFox API key does".into(),
            });
        }
        for (var, v) in [(API_KEY_VAR, &api_key), (AUTH_CODE_VAR, &auth_code)] {
            if v.chars().any(char::is_control) {
                return Err(ClientError::BadCredentials {
                    var,
                    reason: "it contains control characters".into(),
                });
            }
        }
        Ok(Credentials { api_key, auth_code })
    }

    /// Adds the Basic-auth header: the one place the key and code are sent, so their
    /// fields stay private to this file.
    pub(super) fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.basic_auth(&self.api_key, Some(&self.auth_code))
    }

    /// Replaces any appearance of a credential (or of the Basic-auth token) in text that
    /// came from elsewhere, such as a server's error body. Very short values are skipped:
    /// replacing them would mangle ordinary words and protect nothing.
    pub(crate) fn scrub(&self, text: &str) -> String {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", self.api_key, self.auth_code));
        let mut out = text.to_owned();
        for secret in [&token, &self.api_key, &self.auth_code] {
            if secret.len() >= 6 && out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "[redacted]");
            }
        }
        out
    }
}

/// The account to talk to: `https://acme.happyfox.com`, `.happyfox.net`, a custom domain,
/// or a loopback sandbox over http.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    account: Url,
    api: Url,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.account_url())
    }
}

/// The API prefix appended to the account URL.
const API_PATH: &str = "/api/1.1/json/";

impl Target {
    /// Accepts the account URL with or without `https://`, with or without the API path.
    /// Credentials in the URL are refused (and not echoed): they belong in the environment.
    pub fn parse(input: &str) -> Result<Target, ClientError> {
        let trimmed = input.trim();
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("https://{trimmed}")
        };
        let bad = |reason: &str| ClientError::BadUrl {
            url: trimmed.to_owned(),
            reason: reason.to_owned(),
        };
        let mut url = Url::parse(&with_scheme).map_err(|e| {
            if with_scheme.contains('@') {
                ClientError::BadUrl {
                    url: "[not shown: it may contain credentials]".into(),
                    reason: e.to_string(),
                }
            } else {
                bad(&e.to_string())
            }
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ClientError::BadUrl {
                url: "[not shown: it contains credentials]".into(),
                reason: format!(
                    "put credentials in {API_KEY_VAR} and {AUTH_CODE_VAR}, not in the URL"
                ),
            });
        }
        let host = url
            .host_str()
            .ok_or_else(|| bad("it has no host name"))?
            .to_owned();
        match url.scheme() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            "http" => {
                return Err(ClientError::InsecureUrl {
                    url: trimmed.to_owned(),
                });
            }
            other => return Err(bad(&format!("scheme {other}:// is not http(s)"))),
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad("it must not have a query (?...) or fragment (#...)"));
        }
        let path = url.path().trim_end_matches('/').to_owned();
        let api_trimmed = API_PATH.trim_end_matches('/');
        let prefix = match path.strip_suffix(api_trimmed) {
            Some(p) => p.to_owned(),
            None => path,
        };
        if !prefix.is_empty() {
            return Err(bad(
                "give the account's address only, such as https://acme.happyfox.com",
            ));
        }
        url.set_path("/");
        let api = url
            .join(API_PATH.trim_start_matches('/'))
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Target { account: url, api })
    }

    /// `https://acme.happyfox.com`, no trailing slash: for reports, the journal and
    /// ticket links.
    pub fn account_url(&self) -> String {
        self.account.as_str().trim_end_matches('/').to_owned()
    }

    /// The API base, `https://acme.happyfox.com/api/1.1/json/`; requests go through
    /// [`Target::endpoint`], which checks the path.
    #[cfg(test)]
    fn api_url(&self) -> &Url {
        &self.api
    }

    /// The full URL of an API path such as `tickets/`. Only relative paths are accepted,
    /// so a path can never point the credentials at another host.
    pub fn endpoint(&self, path: &str) -> Result<Url, ClientError> {
        let path = path.trim_start_matches('/');
        if path.contains("://") || path.contains("..") || path.contains('\\') {
            return Err(ClientError::Encode {
                path: path.to_owned(),
                detail: "not a relative API path".into(),
            });
        }
        self.api.join(path).map_err(|e| ClientError::Encode {
            path: path.to_owned(),
            detail: e.to_string(),
        })
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.eq_ignore_ascii_case("localhost") {
        return true;
    }
    bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let ok = [
            (
                "https://acme.happyfox.com",
                "https://acme.happyfox.com",
                "https://acme.happyfox.com/api/1.1/json/",
            ),
            (
                "acme.happyfox.net",
                "https://acme.happyfox.net",
                "https://acme.happyfox.net/api/1.1/json/",
            ),
            (
                "https://help.example.org/",
                "https://help.example.org",
                "https://help.example.org/api/1.1/json/",
            ),
            (
                "https://acme.happyfox.com/api/1.1/json/",
                "https://acme.happyfox.com",
                "https://acme.happyfox.com/api/1.1/json/",
            ),
            (
                "http://127.0.0.1:8765",
                "http://127.0.0.1:8765",
                "http://127.0.0.1:8765/api/1.1/json/",
            ),
            (
                "http://127.3.4.5",
                "http://127.3.4.5",
                "http://127.3.4.5/api/1.1/json/",
            ),
            (
                "http://[::1]:9000",
                "http://[::1]:9000",
                "http://[::1]:9000/api/1.1/json/",
            ),
            (
                "http://LocalHost:1",
                "http://localhost:1",
                "http://localhost:1/api/1.1/json/",
            ),
        ];
        for (input, account, api) in ok {
            let t = Target::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(t.account_url(), account, "{input}");
            assert_eq!(t.api_url().as_str(), api, "{input}");
        }
        let t = Target::parse("https://acme.happyfox.com").unwrap();
        assert_eq!(
            t.endpoint("/tickets/").unwrap().as_str(),
            "https://acme.happyfox.com/api/1.1/json/tickets/"
        );
        assert!(t.endpoint("https://evil.example/").is_err());
        assert!(
            t.endpoint("//evil.example/x")
                .is_ok_and(|u| u.host_str() == Some("acme.happyfox.com"))
        );
        assert!(t.endpoint("../../admin").is_err());
    }

    #[test]
    fn plain_http_is_refused_with_the_reason() {
        for input in [
            "http://acme.happyfox.com",
            "http://10.0.0.1:80",
            "http://128.0.0.1",
        ] {
            let e = Target::parse(input).unwrap_err();
            assert!(matches!(e, ClientError::InsecureUrl { .. }), "{input}: {e}");
            assert!(e.to_string().contains("POST over http as a GET"), "{e}");
        }
    }

    #[test]
    fn bad_urls() {
        for input in [
            "ftp://x.com",
            "https://acme.happyfox.com/staff/",
            "https://a.com/?q=1",
            "https://",
        ] {
            assert!(Target::parse(input).is_err(), "{input}");
        }
        let e = Target::parse("https://key123456:code987654@acme.happyfox.com").unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains("key123456") && !text.contains("code987654"),
            "{text}"
        );
        assert!(text.contains("HAPPYFOX_API_KEY"));
    }

    #[test]
    fn credentials_never_print() {
        let c = Credentials::new(" secret-key-1 ", "secret-code-2\n").unwrap();
        let text = format!("{c} {c:?}");
        assert!(!text.contains("secret"), "{text}");
        assert_eq!(c.api_key, "secret-key-1");
        assert_eq!(
            c.scrub("echo secret-key-1 and secret-code-2"),
            "echo [redacted] and [redacted]"
        );
        let e = Credentials::new("", "x").unwrap_err();
        assert!(e.to_string().contains("HAPPYFOX_API_KEY"), "{e}");
        let e = Credentials::new("a:b", "x").unwrap_err();
        assert!(!e.to_string().contains("a:b"), "{e}");
    }
}
