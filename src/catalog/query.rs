//! Barbican's list filters, sort keys and paging as SQL, for both catalogs.

use crate::catalog::rows::SECRET_COLUMNS;
use crate::catalog::sql::{Dialect, Value};
use crate::catalog::{Cmp, SecretFilter, SortKey};
use crate::model::{ProjectId, Timestamp};

/// The two statements of one listing: the total, and the page.
#[derive(Debug)]
pub(crate) struct Listing<'a> {
    /// `SELECT COUNT(*)` over every match; binds `args`.
    pub count_sql: String,
    /// The page of [`SECRET_COLUMNS`]; binds `args` then limit and offset.
    pub page_sql: String,
    pub args: Vec<Value<'a>>,
}

impl<'a> Listing<'a> {
    /// Unexpired secrets of `project` (or, with `filter.acl_user`, of any
    /// project where that user is on the ACL) matching `filter`.
    pub fn secrets(
        dialect: &Dialect,
        project: &'a ProjectId,
        filter: &'a SecretFilter,
        now: Timestamp,
    ) -> Self {
        let mut q = Where {
            sql: String::from(" FROM secrets s WHERE (expiration IS NULL OR expiration > $1)"),
            args: vec![Value::from(now.unix())],
        };
        match &filter.acl_user {
            Some(user) => q.push(
                " AND id IN (SELECT secret_id FROM secret_acl_users WHERE user_id = ",
                user.as_str(),
                ")",
            ),
            None => q.push(" AND project_id = ", project.as_str(), ""),
        }
        for (column, pattern) in [
            ("name", &filter.name),
            ("algorithm", &filter.algorithm),
            ("mode", &filter.mode),
        ] {
            let Some(pattern) = pattern else { continue };
            if pattern.contains(['%', '_']) {
                let op = format!(" AND {column} {} ", dialect.like);
                q.push(&op, pattern.as_str(), " ESCAPE '\\'");
            } else {
                q.push(&format!(" AND {column} = "), pattern.as_str(), "");
            }
        }
        if let Some(bits) = filter.bit_length {
            q.push(" AND bit_length = ", i64::from(bits), "");
        }
        if let Some(t) = filter.secret_type {
            q.push(" AND secret_type = ", t.as_str(), "");
        }
        for (column, conds) in [
            ("created", &filter.created),
            ("updated", &filter.updated),
            ("expiration", &filter.expiration),
        ] {
            for (cmp, t) in conds {
                q.push(&format!(" AND {column} {} ", cmp_sql(*cmp)), t.unix(), "");
            }
        }
        let mut order = String::from(" ORDER BY ");
        for (key, desc) in &filter.sort {
            order.push_str(sort_column(*key));
            order.push_str(if *desc { dialect.desc } else { dialect.asc });
            order.push_str(", ");
        }
        let n = q.args.len();
        order.push_str(&format!(
            "created ASC, id ASC LIMIT ${} OFFSET ${}",
            n + 1,
            n + 2
        ));
        Listing {
            count_sql: format!("SELECT COUNT(*){}", q.sql),
            page_sql: format!("SELECT {SECRET_COLUMNS}{}{order}", q.sql),
            args: q.args,
        }
    }
}

/// A `WHERE` clause and its arguments, numbered as they are added.
struct Where<'a> {
    sql: String,
    args: Vec<Value<'a>>,
}

impl<'a> Where<'a> {
    fn push(&mut self, before: &str, arg: impl Into<Value<'a>>, after: &str) {
        self.args.push(arg.into());
        self.sql.push_str(before);
        self.sql.push_str(&format!("${}", self.args.len()));
        self.sql.push_str(after);
    }
}

/// `LIMIT` and `OFFSET` arguments of a page.
pub(crate) fn page_args<'a>(limit: u32, offset: u64) -> [Value<'a>; 2] {
    [
        Value::from(i64::from(limit)),
        Value::from(i64::try_from(offset).unwrap_or(i64::MAX)),
    ]
}

/// The column a sort key orders by.
fn sort_column(k: SortKey) -> &'static str {
    match k {
        SortKey::Algorithm => "algorithm",
        SortKey::BitLength => "bit_length",
        SortKey::Created => "created",
        SortKey::Expiration => "expiration",
        SortKey::Mode => "mode",
        SortKey::Name => "name",
        SortKey::SecretType => "secret_type",
        SortKey::Status => "status",
        SortKey::Updated => "updated",
    }
}

/// The SQL operator of a date comparison.
fn cmp_sql(c: Cmp) -> &'static str {
    match c {
        Cmp::Eq => "=",
        Cmp::Gt => ">",
        Cmp::Gte => ">=",
        Cmp::Lt => "<",
        Cmp::Lte => "<=",
    }
}
