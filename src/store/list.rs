//! Barbican's list query syntax: date filters, sort keys and paging limits.

use crate::catalog::{Cmp, SecretFilter, SortKey};
use crate::error::{Error, Result};
use crate::model::{SecretType, Timestamp};

/// Barbican's `default_limit_paging`.
pub const DEFAULT_LIMIT: u32 = 10;
/// Barbican's `max_limit_paging`.
pub const MAX_LIMIT: u32 = 100;

/// A secrets listing as a caller asks for it, in Barbican's query terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// SQL LIKE pattern on the name.
    pub name: Option<String>,
    /// SQL LIKE pattern on the algorithm (`alg`).
    pub algorithm: Option<String>,
    /// SQL LIKE pattern on the mode.
    pub mode: Option<String>,
    /// Exact bit length (`bits`).
    pub bit_length: Option<u32>,
    pub secret_type: Option<SecretType>,
    /// e.g. `gt:2026-01-01T00:00:00,lte:2026-02-01T00:00:00`
    pub created: Option<String>,
    pub updated: Option<String>,
    pub expiration: Option<String>,
    /// e.g. `name:asc,created:desc`
    pub sort: Option<String>,
    /// Clamped to 1..=100; default 10.
    pub limit: Option<i64>,
    /// Negative means 0.
    pub offset: Option<i64>,
    /// Secrets whose read ACL lists the caller, in any project.
    pub acl_only: bool,
}

impl ListQuery {
    /// The clamped page size.
    pub fn effective_limit(&self) -> u32 {
        match self.limit {
            None => DEFAULT_LIMIT,
            Some(l) if l < 1 => 1,
            Some(l) if l > i64::from(MAX_LIMIT) => MAX_LIMIT,
            Some(l) => l as u32,
        }
    }

    pub fn effective_offset(&self) -> u64 {
        self.offset.map_or(0, |o| o.max(0) as u64)
    }

    /// Validates the query into a catalog filter.
    pub(crate) fn to_filter(&self) -> Result<SecretFilter> {
        Ok(SecretFilter {
            name: self.name.clone(),
            algorithm: self.algorithm.clone(),
            mode: self.mode.clone(),
            bit_length: self.bit_length,
            secret_type: self.secret_type,
            created: parse_date_filter("created", self.created.as_deref())?,
            updated: parse_date_filter("updated", self.updated.as_deref())?,
            expiration: parse_date_filter("expiration", self.expiration.as_deref())?,
            sort: parse_sort(self.sort.as_deref())?,
            acl_user: None,
        })
    }
}

/// `[gt:|gte:|lt:|lte:]DATE[,…]`; at most one lower and one upper bound, and
/// equality stands alone.
pub fn parse_date_filter(field: &'static str, text: Option<&str>) -> Result<Vec<(Cmp, Timestamp)>> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for part in text.split(',') {
        let part = part.trim();
        let (cmp, date) = match part.split_once(':') {
            Some(("gt", d)) => (Cmp::Gt, d),
            Some(("gte", d)) => (Cmp::Gte, d),
            Some(("lt", d)) => (Cmp::Lt, d),
            Some(("lte", d)) => (Cmp::Lte, d),
            _ => (Cmp::Eq, part),
        };
        let t = Timestamp::parse_iso8601(date)
            .map_err(|_| Error::invalid(field, "URI provided invalid query string parameters."))?;
        out.push((cmp, t));
    }
    let lower = out
        .iter()
        .filter(|(c, _)| matches!(c, Cmp::Gt | Cmp::Gte))
        .count();
    let upper = out
        .iter()
        .filter(|(c, _)| matches!(c, Cmp::Lt | Cmp::Lte))
        .count();
    let eq = out.iter().filter(|(c, _)| *c == Cmp::Eq).count();
    if lower > 1 || upper > 1 || (eq > 0 && out.len() > 1) {
        return Err(Error::invalid(
            field,
            "URI provided invalid query string parameters.",
        ));
    }
    Ok(out)
}

/// `key[:asc|desc],…` over Barbican's sortable columns; no key twice.
pub fn parse_sort(text: Option<&str>) -> Result<Vec<(SortKey, bool)>> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let mut out: Vec<(SortKey, bool)> = Vec::new();
    for part in text.split(',') {
        let (key, dir) = part.trim().split_once(':').unwrap_or((part.trim(), "asc"));
        let key = match key {
            "algorithm" => SortKey::Algorithm,
            "bit_length" => SortKey::BitLength,
            "created" => SortKey::Created,
            "expiration" => SortKey::Expiration,
            "mode" => SortKey::Mode,
            "name" => SortKey::Name,
            "secret_type" => SortKey::SecretType,
            "status" => SortKey::Status,
            "updated" => SortKey::Updated,
            _ => return Err(Error::invalid("sort", "unknown sort key")),
        };
        let desc = match dir {
            "asc" => false,
            "desc" => true,
            _ => return Err(Error::invalid("sort", "sort direction must be asc or desc")),
        };
        if out.iter().any(|(k, _)| *k == key) {
            return Err(Error::invalid("sort", "a sort key appears twice"));
        }
        out.push((key, desc));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_clamp_as_barbican_does() {
        let q = |limit, offset| ListQuery {
            limit,
            offset,
            ..ListQuery::default()
        };
        assert_eq!(q(None, None).effective_limit(), 10);
        assert_eq!(q(Some(0), None).effective_limit(), 1);
        assert_eq!(q(Some(-5), None).effective_limit(), 1);
        assert_eq!(q(Some(1000), None).effective_limit(), 100);
        assert_eq!(q(Some(42), None).effective_limit(), 42);
        assert_eq!(q(None, Some(-3)).effective_offset(), 0);
        assert_eq!(q(None, Some(7)).effective_offset(), 7);
    }

    #[test]
    fn date_filters() {
        let f =
            parse_date_filter("created", Some("gt:2026-01-01T00:00:00,lte:2026-02-01")).unwrap();
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].0, Cmp::Gt);
        assert_eq!(f[1].0, Cmp::Lte);
        for bad in [
            "gt:2026-01-01,gte:2026-01-02",
            "2026-01-01,lt:2026-02-01",
            "gt:soon",
        ] {
            let e = parse_date_filter("created", Some(bad)).unwrap_err();
            assert_eq!(e.field(), Some("created"), "{bad}");
        }
    }

    #[test]
    fn sort_keys() {
        assert_eq!(
            parse_sort(Some("name:desc,created")).unwrap(),
            vec![(SortKey::Name, true), (SortKey::Created, false)]
        );
        for bad in ["name,name:desc", "colour", "name:up"] {
            assert_eq!(
                parse_sort(Some(bad)).unwrap_err().field(),
                Some("sort"),
                "{bad}"
            );
        }
    }
}
