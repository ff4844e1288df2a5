//! The benchmark floor: a bare axum server whose one handler parses the JSON
//! body and answers a constant. `benches/load.sh` runs it beside Portcullis
//! so every decision-API figure can be read as a fraction of this one.
//!
//! Usage: `floor ADDR` (default 127.0.0.1:18180).

use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;

async fn constant(body: Bytes) -> impl IntoResponse {
    let parsed: Result<serde_json::Value, _> = serde_json::from_slice(&body);
    let answer: &'static str = match parsed {
        Ok(_) => r#"{"result":{"allowed":true}}"#,
        Err(_) => r#"{"code":"invalid_parameter"}"#,
    };
    ([(header::CONTENT_TYPE, "application/json")], answer)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18180".to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let app = Router::new().fallback(post(constant));
    eprintln!("floor listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await
}
