//! `GET /metrics`: the coordinator's Prometheus metrics in the text format
//! (0.0.4), behind the same client-certificate rule as the pages, so a
//! Prometheus scrapes with a viewer certificate.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::App;

pub async fn scrape(State(app): State<App>) -> Response {
    match app
        .coordinator
        .metrics
        .render(crate::read::gauges::fleet(&app.coordinator))
        .await
    {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(error) => {
            tracing::error!(%error, "could not encode metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, "could not encode metrics\n").into_response()
        }
    }
}
