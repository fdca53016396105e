//! How a query written once runs on either backend: a statement is its text
//! and a list of [`Arg`]s ([`query`]), run on a pool or in a transaction
//! ([`Target`]) by the backend's [`Dialect`].
//!
//! Why not sqlx's own generic API: generic code over `DB: sqlx::Database`
//! must restate, on every generic item, bounds such as
//! `for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>` and
//! `i64: Encode<'_, DB> + Type<DB>` (once per type bound, and
//! `Option<&str>` apart from `&str`), because Rust does not carry a trait's
//! `where` clauses to its users. Here they are written once, on [`Run`], and
//! everything else needs only `DB: Dialect`. [`Query::bind`] takes the few
//! types the store binds, and each reaches sqlx exactly as a direct `.bind`
//! of it would.

use std::future::Future;
use std::marker::PhantomData;

use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{
    Arguments, Database, Encode, Executor, FromRow, IntoArguments, Pool, Postgres, Sqlite,
    Transaction, Type,
};

/// A value bound to a placeholder.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    /// TEXT, or a NULL typed TEXT.
    Text(Option<&'a str>),
    Int(i64),
    Bool(bool),
    Bytes(&'a [u8]),
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(v: &'a str) -> Self {
        Self::Text(Some(v))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(v: &'a String) -> Self {
        Self::Text(Some(v))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Self::Text(v)
    }
}

impl<'a> From<&'a Option<String>> for Arg<'a> {
    fn from(v: &'a Option<String>) -> Self {
        Self::Text(v.as_deref())
    }
}

impl From<i64> for Arg<'_> {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}

impl From<bool> for Arg<'_> {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl<'a> From<&'a Vec<u8>> for Arg<'a> {
    fn from(v: &'a Vec<u8>) -> Self {
        Self::Bytes(v)
    }
}

/// A row type (or tuple) either backend can decode: every `FromRow` derive
/// and tuple of the crate is one.
pub(crate) trait FromEitherRow:
    for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

impl<T> FromEitherRow for T where
    T: for<'r> FromRow<'r, SqliteRow> + for<'r> FromRow<'r, PgRow> + Send + Unpin
{
}

/// Where a statement runs.
pub(crate) enum On<'c, DB: Database> {
    /// On a connection of the pool, for this statement alone.
    Pool(&'c Pool<DB>),
    /// In an open transaction.
    Tx(&'c mut DB::Connection),
}

/// A pool or an open transaction: what [`Query`]'s methods run on. It has
/// no lifetime parameter: with a bound like `To: Target<'c>` on those
/// `async fn`s, rustc fails to prove the store traits' futures `Send`
/// ("implementation of `Target` is not general enough").
pub(crate) trait Target: Send {
    type Db: Dialect;
    fn on(&mut self) -> On<'_, Self::Db>;
}

impl<DB: Dialect> Target for &Pool<DB> {
    type Db = DB;
    fn on(&mut self) -> On<'_, DB> {
        On::Pool(self)
    }
}

impl<DB: Dialect> Target for &mut Transaction<'_, DB> {
    type Db = DB;
    fn on(&mut self) -> On<'_, DB> {
        On::Tx(&mut ***self)
    }
}

/// A statement with `$n` placeholders and its arguments, in order.
#[must_use = "a query does nothing until it is run"]
pub(crate) struct Query<'q> {
    sql: &'q str,
    args: Vec<Arg<'q>>,
}

/// Starts a statement; `sql` uses `$1`, `$2`… (SQLite reads them too).
pub(crate) fn query(sql: &str) -> Query<'_> {
    Query {
        sql,
        args: Vec::new(),
    }
}

impl<'q> Query<'q> {
    /// Binds the next placeholder.
    pub fn bind(mut self, value: impl Into<Arg<'q>>) -> Self {
        self.args.push(value.into());
        self
    }

    /// Binds the next placeholders, one per item.
    pub fn bind_all<V: Into<Arg<'q>>>(mut self, values: impl IntoIterator<Item = V>) -> Self {
        self.args.extend(values.into_iter().map(Into::into));
        self
    }

    /// Runs the statement; returns the number of rows it changed.
    pub async fn execute<To: Target>(self, mut to: To) -> sqlx::Result<u64> {
        To::Db::execute(to.on(), self.sql, &self.args).await
    }

    pub async fn fetch_optional<T: FromEitherRow, To: Target>(
        self,
        mut to: To,
    ) -> sqlx::Result<Option<T>> {
        To::Db::fetch_optional(to.on(), self.sql, &self.args).await
    }

    /// The first row; `RowNotFound` when there is none (as sqlx's `fetch_one`).
    pub async fn fetch_one<T: FromEitherRow, To: Target>(self, to: To) -> sqlx::Result<T> {
        self.fetch_optional(to)
            .await?
            .ok_or(sqlx::Error::RowNotFound)
    }

    pub async fn fetch_all<T: FromEitherRow, To: Target>(self, mut to: To) -> sqlx::Result<Vec<T>> {
        To::Db::fetch_all(to.on(), self.sql, &self.args).await
    }

    /// The first column of the first row (as sqlx's `query_scalar`).
    pub async fn scalar_optional<T, To: Target>(self, to: To) -> sqlx::Result<Option<T>>
    where
        (T,): FromEitherRow,
    {
        Ok(self.fetch_optional::<(T,), _>(to).await?.map(|(v,)| v))
    }

    pub async fn scalar_one<T, To: Target>(self, to: To) -> sqlx::Result<T>
    where
        (T,): FromEitherRow,
    {
        Ok(self.fetch_one::<(T,), _>(to).await?.0)
    }

    pub async fn scalar_all<T, To: Target>(self, to: To) -> sqlx::Result<Vec<T>>
    where
        (T,): FromEitherRow,
    {
        let rows: Vec<(T,)> = self.fetch_all(to).await?;
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }
}

/// `$first, $first+1, …` for `n` values: the placeholders of an `IN (…)` list.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A backend's driver: runs a statement. Implemented for `sqlx::Sqlite` and
/// `sqlx::Postgres`, each by [`Run`].
pub(crate) trait Dialect: Database {
    fn execute<'c, 'q>(
        on: On<'c, Self>,
        sql: &'q str,
        args: &'q [Arg<'q>],
    ) -> impl Future<Output = sqlx::Result<u64>> + Send;

    fn fetch_optional<'c, 'q, T: FromEitherRow>(
        on: On<'c, Self>,
        sql: &'q str,
        args: &'q [Arg<'q>],
    ) -> impl Future<Output = sqlx::Result<Option<T>>> + Send;

    fn fetch_all<'c, 'q, T: FromEitherRow>(
        on: On<'c, Self>,
        sql: &'q str,
        args: &'q [Arg<'q>],
    ) -> impl Future<Output = sqlx::Result<Vec<T>>> + Send;
}

// The two implementations differ only in the type, and in `rows_affected`,
// which sqlx defines per backend rather than on `Database::QueryResult`.

impl Dialect for Sqlite {
    async fn execute(on: On<'_, Self>, sql: &str, args: &[Arg<'_>]) -> sqlx::Result<u64> {
        Ok(Run::execute(on, sql, args).await?.rows_affected())
    }

    async fn fetch_optional<T: FromEitherRow>(
        on: On<'_, Self>,
        sql: &str,
        args: &[Arg<'_>],
    ) -> sqlx::Result<Option<T>> {
        Run::fetch_optional(on, sql, args).await
    }

    async fn fetch_all<T: FromEitherRow>(
        on: On<'_, Self>,
        sql: &str,
        args: &[Arg<'_>],
    ) -> sqlx::Result<Vec<T>> {
        Run::fetch_all(on, sql, args).await
    }
}

impl Dialect for Postgres {
    async fn execute(on: On<'_, Self>, sql: &str, args: &[Arg<'_>]) -> sqlx::Result<u64> {
        Ok(Run::execute(on, sql, args).await?.rows_affected())
    }

    async fn fetch_optional<T: FromEitherRow>(
        on: On<'_, Self>,
        sql: &str,
        args: &[Arg<'_>],
    ) -> sqlx::Result<Option<T>> {
        Run::fetch_optional(on, sql, args).await
    }

    async fn fetch_all<T: FromEitherRow>(
        on: On<'_, Self>,
        sql: &str,
        args: &[Arg<'_>],
    ) -> sqlx::Result<Vec<T>> {
        Run::fetch_all(on, sql, args).await
    }
}

/// sqlx's generic API, with the bounds it needs written once. Only called
/// where the database is concrete (the `Dialect` impls above), so the bounds
/// never spread to the queries.
struct Run<DB>(PhantomData<DB>);

impl<DB> Run<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB> + Type<DB>,
    for<'q> &'q [u8]: Encode<'q, DB> + Type<DB>,
    i64: for<'q> Encode<'q, DB> + Type<DB>,
    bool: for<'q> Encode<'q, DB> + Type<DB>,
{
    /// Encodes the arguments as `Query::bind` would, with its error message.
    fn arguments<'q>(args: &[Arg<'q>]) -> sqlx::Result<DB::Arguments<'q>> {
        let mut out = DB::Arguments::default();
        for (i, arg) in args.iter().enumerate() {
            let added = match *arg {
                Arg::Text(v) => out.add(v),
                Arg::Int(v) => out.add(v),
                Arg::Bool(v) => out.add(v),
                Arg::Bytes(v) => out.add(v),
            };
            added.map_err(|error| {
                sqlx::Error::Encode(format!("Encoding argument ${} failed: {error}", i + 1).into())
            })?;
        }
        Ok(out)
    }

    async fn execute<'q>(
        on: On<'_, DB>,
        sql: &'q str,
        args: &[Arg<'q>],
    ) -> sqlx::Result<DB::QueryResult> {
        let q = sqlx::query_with(sql, Self::arguments(args)?);
        match on {
            On::Pool(pool) => q.execute(pool).await,
            On::Tx(conn) => q.execute(conn).await,
        }
    }

    async fn fetch_optional<'q, T>(
        on: On<'_, DB>,
        sql: &'q str,
        args: &[Arg<'q>],
    ) -> sqlx::Result<Option<T>>
    where
        T: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        let q = sqlx::query_as_with(sql, Self::arguments(args)?);
        match on {
            On::Pool(pool) => q.fetch_optional(pool).await,
            On::Tx(conn) => q.fetch_optional(conn).await,
        }
    }

    async fn fetch_all<'q, T>(
        on: On<'_, DB>,
        sql: &'q str,
        args: &[Arg<'q>],
    ) -> sqlx::Result<Vec<T>>
    where
        T: for<'r> FromRow<'r, DB::Row> + Send + Unpin,
    {
        let q = sqlx::query_as_with(sql, Self::arguments(args)?);
        match on {
            On::Pool(pool) => q.fetch_all(pool).await,
            On::Tx(conn) => q.fetch_all(conn).await,
        }
    }
}
