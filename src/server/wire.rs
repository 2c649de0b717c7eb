//! Wire helpers every resource uses: the negotiated API version, the
//! caller's identity, bounded request bodies, JSON field reading with
//! Barbican's schema wording, timestamps, paging links.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::context::Context;
use crate::model::{Page, Timestamp};

use super::AppState;
use super::error::{ApiError, ApiResult, Resource};

/// `OpenStack-API-Version: key-manager 1.N`; 1.0 when absent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiVersion {
    pub minor: u8,
}

pub const MAX_MINOR: u8 = 2;

impl ApiVersion {
    pub fn from_headers(h: &HeaderMap) -> ApiResult<Self> {
        let Some(v) = h.get("openstack-api-version") else {
            return Ok(ApiVersion { minor: 0 });
        };
        let text = v.to_str().unwrap_or("").trim();
        let refuse = || {
            ApiError::new(
                axum::http::StatusCode::NOT_ACCEPTABLE,
                format!("Invalid microversion: Unacceptable version header: {text}"),
            )
        };
        let Some(rest) = text.strip_prefix("key-manager") else {
            // Another service's version: not ours to judge.
            return Ok(ApiVersion { minor: 0 });
        };
        let rest = rest.trim();
        if rest.eq_ignore_ascii_case("latest") {
            return Ok(ApiVersion { minor: MAX_MINOR });
        }
        let minor = rest
            .strip_prefix("1.")
            .and_then(|m| m.parse::<u8>().ok())
            .ok_or_else(refuse)?;
        if minor > MAX_MINOR {
            return Err(refuse());
        }
        Ok(ApiVersion { minor })
    }

    /// Secret consumers show in secret bodies from 1.1 on.
    pub fn shows_consumers(self) -> bool {
        self.minor >= 1
    }
}

/// The authenticated caller and the negotiated version.
pub struct Caller {
    pub ctx: Context,
    pub version: ApiVersion,
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> ApiResult<Self> {
        let version = ApiVersion::from_headers(&parts.headers)?;
        let fast = if state.auth.is_costly() {
            state.auth.authenticate_fast(&parts.headers)
        } else {
            Some(state.auth.authenticate(&parts.headers))
        };
        let ctx = if let Some(answer) = fast {
            answer?
        } else {
            let auth = state.auth.clone();
            let headers = parts.headers.clone();
            let permit = state
                .blocking
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| ApiError::internal())?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                auth.authenticate(&headers)
            })
            .await
            .map_err(|_| ApiError::internal())??
        };
        Ok(Caller { ctx, version })
    }
}

/// A request body read up to the configured limit (413 past it), with its
/// `Content-Type` and `Content-Encoding`.
pub struct Body {
    pub bytes: Bytes,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
}

impl FromRequest<Arc<AppState>> for Body {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> ApiResult<Self> {
        let limit = state.max_body_bytes;
        let (parts, body) = req.into_parts();
        let header_text = |name: header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|s| s.trim().to_owned())
        };
        let content_type = header_text(header::CONTENT_TYPE);
        let content_encoding = header_text(header::CONTENT_ENCODING);
        if let Some(len) = header_text(header::CONTENT_LENGTH)
            && len.parse::<u64>().is_ok_and(|n| n > limit as u64)
        {
            return Err(ApiError::too_large());
        }
        let bytes = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| ApiError::too_large())?;
        Ok(Body {
            bytes,
            content_type,
            content_encoding,
        })
    }
}

impl Body {
    /// The media type without parameters, lower-cased.
    pub fn media_type(&self) -> Option<String> {
        self.content_type.as_deref().map(|t| {
            t.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
    }

    /// The body as a JSON object: 415 unless `application/json`, 400
    /// `Malformed JSON` unless it parses to an object.
    pub fn json_object(&self) -> ApiResult<Map<String, Value>> {
        if self.media_type().as_deref() != Some("application/json") {
            return Err(ApiError::unsupported_media(&["application/json"]));
        }
        match serde_json::from_slice::<Value>(&self.bytes) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(ApiError::malformed_json()),
        }
    }
}

/// Reads JSON fields with Barbican's JSON-schema wording.
pub struct Fields<'a> {
    pub map: &'a Map<String, Value>,
    pub resource: Resource,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>, resource: Resource) -> Self {
        Fields { map, resource }
    }

    fn type_error(&self, key: &str, v: &Value, ty: &str) -> ApiError {
        ApiError::schema(
            self.resource,
            &format!("{v} is not of type '{ty}'"),
            Some(key),
        )
    }

    /// A string, or absent/null.
    pub fn str(&self, key: &str) -> ApiResult<Option<&'a str>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.type_error(key, v, "string")),
        }
    }

    /// A non-negative integer that fits `u32`, or absent/null.
    pub fn u32(&self, key: &str) -> ApiResult<Option<u32>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(x) => Ok(Some(u32::try_from(x).unwrap_or(u32::MAX))),
                None if n.as_i64().is_some() => Err(ApiError::schema(
                    self.resource,
                    &format!("{n} is less than the minimum of 0"),
                    Some(key),
                )),
                None => Err(self.type_error(key, &Value::Number(n.clone()), "integer")),
            },
            Some(v) => Err(self.type_error(key, v, "integer")),
        }
    }

    /// An ISO 8601 timestamp string, or absent/null.
    pub fn timestamp(&self, key: &str) -> ApiResult<Option<Timestamp>> {
        match self.str(key)? {
            None => Ok(None),
            Some(s) if s.trim().is_empty() => Ok(None),
            Some(s) => Timestamp::parse_iso8601(&full_offset(s))
                .map(Some)
                .map_err(|_| {
                    ApiError::schema(
                        self.resource,
                        &format!("'{key}' is not a valid date"),
                        Some(key),
                    )
                }),
        }
    }
}

/// oslo's `parse_isotime` takes Python's `str(datetime)` (a space before
/// the time) and `+01` / `+0100` offsets; RFC 3339 wants `T` and `+01:00`.
fn full_offset(s: &str) -> String {
    let s = s.trim();
    let spaced;
    let s = if s.len() > 10 && s.as_bytes()[10] == b' ' && s.is_char_boundary(11) {
        spaced = format!("{}T{}", &s[..10], &s[11..]);
        spaced.as_str()
    } else {
        s
    };
    let Some(t) = s.find('T') else {
        return s.to_owned();
    };
    let time = &s[t..];
    let Some(sign) = time.rfind(['+', '-']) else {
        return s.to_owned();
    };
    let offset = &time[sign + 1..];
    let digits = offset.bytes().all(|b| b.is_ascii_digit());
    let head = &s[..t + sign + 1];
    match offset.len() {
        2 if digits => format!("{head}{offset}:00"),
        4 if digits => format!("{head}{}:{}", &offset[..2], &offset[2..]),
        _ => s.to_owned(),
    }
}

/// Barbican's timestamps: UTC, no offset suffix.
pub fn time(t: Timestamp) -> String {
    let s = t.to_iso8601();
    s.strip_suffix("+00:00").map(str::to_owned).unwrap_or(s)
}

pub fn opt_time(t: Option<Timestamp>) -> Option<String> {
    t.map(time)
}

/// A creation's answer: `status`, `body`, and the new object's `Location`.
pub fn created(status: StatusCode, body: Value, location: &str) -> Response {
    with_location((status, axum::Json(body)).into_response(), location)
}

/// `resp` with a `Location` header (left out if `location` cannot be one).
pub fn with_location(mut resp: Response, location: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// Query parameters (last one wins, as webob's `params` reads them).
pub type Query = HashMap<String, String>;

/// `limit`/`offset` as Barbican reads them: a value that is not an integer
/// is ignored (the default applies).
pub fn paging(q: &Query) -> (Option<i64>, Option<i64>) {
    let int = |k: &str| q.get(k).and_then(|v| v.trim().parse::<i64>().ok());
    (int("limit"), int("offset"))
}

/// Adds `total` and Barbican's `previous`/`next` links to a listing.
pub fn add_paging<T>(out: &mut Map<String, Value>, state: &AppState, kind: &str, page: &Page<T>) {
    out.insert("total".into(), Value::from(page.total));
    let link = |offset: u64| {
        Value::String(format!(
            "{}/v1/{kind}?limit={}&offset={offset}",
            state.href, page.limit
        ))
    };
    if page.offset > 0 {
        out.insert(
            "previous".into(),
            link(page.offset.saturating_sub(u64::from(page.limit))),
        );
    }
    if page.total > page.offset + u64::from(page.limit) {
        out.insert("next".into(), link(page.offset + u64::from(page.limit)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_offsets_are_completed() {
        assert_eq!(
            full_offset("2026-01-02T03:04:05-01"),
            "2026-01-02T03:04:05-01:00"
        );
        assert_eq!(
            full_offset("2026-01-02T03:04:05.5+0130"),
            "2026-01-02T03:04:05.5+01:30"
        );
        assert_eq!(full_offset("2026-01-02T03:04:05Z"), "2026-01-02T03:04:05Z");
        assert_eq!(full_offset("2026-01-02"), "2026-01-02");
        assert_eq!(
            full_offset("2026-01-02T03:04:05+01:00"),
            "2026-01-02T03:04:05+01:00"
        );
        assert_eq!(full_offset("T-é"), "T-é");
        assert_eq!(
            full_offset("2026-01-02 03:04:05.25"),
            "2026-01-02T03:04:05.25"
        );
        assert_eq!(
            full_offset("2026-01-02 03:04:05.25+01"),
            "2026-01-02T03:04:05.25+01:00"
        );
        // Not a date, but no panic on multi-byte text.
        let _ = full_offset("ééééé éééé");
        let _ = full_offset("éééé éé");
    }
}
