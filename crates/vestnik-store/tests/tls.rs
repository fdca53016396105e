//! PostgreSQL over TLS (`sslmode=require`): the test server runs with a
//! self-signed certificate, and every connection of the store is encrypted
//! (writer-turn connections are opened with the pool's options).
mod common;

use sqlx::Connection;

#[tokio::test]
async fn every_connection_of_the_store_is_encrypted_with_sslmode_require() {
    let Some(url) = vestnik_testkit::fresh_pg_database("vestnik_store_tls").await else {
        return;
    };
    let db = url.rsplit('/').next().expect("database name").to_owned();
    let store = vestnik_store::open(&format!("{url}?sslmode=require"), 2)
        .await
        .expect("the server takes TLS");
    store.migrate().await.expect("migrate over TLS");
    assert!(store
        .user_by_email("nobody@example.org")
        .await
        .expect("a read over TLS")
        .is_none());
    let mut admin = sqlx::PgConnection::connect(&vestnik_testkit::pg_url())
        .await
        .expect("admin connection");
    let (encrypted, plain): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
         FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = $1",
    )
    .bind(&db)
    .fetch_one(&mut admin)
    .await
    .expect("pg_stat_ssl");
    assert!(encrypted >= 1, "no encrypted connection to {db}");
    assert_eq!(plain, 0, "a connection to {db} is not encrypted");
}
