//! Dead letters (failed and timed-out jobs): filter by FlinksCode and
//! product; retry one, a selection, or every one matching the filter
//! (after a confirmation step); purge every one of a product (confirmed).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use flinkq_shared::store::Store;
use flinkq_shared::{JobId, JobSnapshot, Product};
use maud::html;
use serde::Deserialize;

use super::codes::plain_words;
use super::session::Session;
use super::{PageResult, Viewer, checked_post, csrf_field, field, html_response, layout, when};
use crate::serve::AppState;
use crate::serve::api::product_filter;
use crate::serve::auth::Access;
use crate::serve::error::ServeError;

/// Dead letters read per page of the walk.
const PAGE: usize = 1_000;
/// Rows shown at most.
const SHOWN: usize = 500;
/// Dead letters a filtered "retry all" walks at most.
const WALKED: usize = 200_000;

/// `?code=&product=&done=`.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    /// Only this FlinksCode (or flinkq code).
    #[serde(default)]
    pub code: String,
    /// Only this product.
    #[serde(default)]
    pub product: String,
    /// What the last action did (shown once).
    #[serde(default)]
    pub done: String,
    /// For the confirmation page: `retry-all` or `purge-all`.
    #[serde(default, rename = "do")]
    pub action: String,
}

impl Filter {
    fn product(&self) -> Result<Option<Product>, ServeError> {
        product_filter(Some(self.product.trim()).filter(|p| !p.is_empty()))
    }

    fn code(&self) -> Option<String> {
        Some(self.code.trim().to_ascii_uppercase()).filter(|c| !c.is_empty())
    }

    fn matches(&self, job: &JobSnapshot, product: Option<Product>) -> bool {
        product.is_none_or(|p| job.product == p)
            && self.code().is_none_or(|code| {
                job.error
                    .as_ref()
                    .is_some_and(|e| e.code.eq_ignore_ascii_case(&code))
            })
    }

    fn query(&self, done: &str) -> String {
        format!(
            "/dead?code={}&product={}&done={}",
            encode(self.code.trim()),
            encode(self.product.trim()),
            encode(done)
        )
    }
}

/// A query-string component: letters, digits and `-_.` as they are, the
/// rest percent-encoded.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The dead letters matching the filter, oldest first, up to `limit`.
async fn matching(
    store: &Store,
    filter: &Filter,
    product: Option<Product>,
    limit: usize,
) -> Result<Vec<JobSnapshot>, ServeError> {
    let mut found = Vec::new();
    let mut offset = 0;
    while found.len() < limit && offset < WALKED {
        let ids = store.dead_ids(offset, PAGE).await?;
        if ids.is_empty() {
            break;
        }
        offset += ids.len();
        for job in store.jobs(&ids).await? {
            if filter.matches(&job, product) && found.len() < limit {
                found.push(job);
            }
        }
    }
    Ok(found)
}

fn filter_fields(filter: &Filter) -> maud::Markup {
    html! {
        input type="hidden" name="code" value=(filter.code);
        input type="hidden" name="product" value=(filter.product);
    }
}

/// `GET /dead?code=&product=`.
pub async fn page(
    Viewer(session): Viewer,
    State(state): State<AppState>,
    Query(filter): Query<Filter>,
) -> PageResult {
    let product = filter.product()?;
    let jobs = matching(&state.store, &filter, product, SHOWN).await?;
    let total = state.store.dead_count().await?;
    let full = session.access == Access::Full;
    let body = html! {
        @if !filter.done.is_empty() { p class="done" { (filter.done) } }
        form method="get" action="/dead" class="filters" {
            label { "FlinksCode " input type="text" name="code" value=(filter.code) placeholder="e.g. INVALID_LOGIN"; }
            label { "Product "
                select name="product" {
                    option value="" { "every product" }
                    @for p in Product::all() {
                        option value=(p.as_str()) selected[product == Some(p)] { (p.as_str()) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        p { (jobs.len()) " shown (at most " (SHOWN) ") of " (total) " dead letters." }
        form method="post" action="/dead/action" {
            (csrf_field(&session))
            (filter_fields(&filter))
            @if full {
                div class="actions" {
                    button type="submit" name="do" value="retry" { "Retry selected" }
                    button type="submit" name="do" value="retry-all" { "Retry all matching…" }
                    button type="submit" name="do" value="purge-all" { "Purge all matching…" }
                }
            }
            table {
                thead { tr { @if full { th {} } th { "login" } th { "product" } th { "code" } th { "finished" } @if full { th {} } } }
                tbody {
                    @for job in &jobs {
                        tr {
                            @if full { td { input type="checkbox" name="job" value=(job.id.to_string()) aria-label="select"; } }
                            td { a href={ "/logins/" (job.login) } { code { (job.login.to_string()) } } }
                            td { (job.product.as_str()) }
                            td {
                                @if let Some(error) = &job.error {
                                    strong { (error.code) } br;
                                    span class="plain" { (plain_words(&error.code)) }
                                } @else { (job.state.as_str()) }
                            }
                            td { @if let Some(ms) = job.finished_ms { (when(ms)) } }
                            @if full { td { button type="submit" name="one" value=(job.id.to_string()) { "Retry" } } }
                        }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout("Dead letters", Some(&session), body),
    ))
}

fn describe(filter: &Filter) -> String {
    let code = filter.code().unwrap_or_else(|| "any code".into());
    let product = Some(filter.product.trim())
        .filter(|p| !p.is_empty())
        .unwrap_or("every product");
    format!("{code}, {product}")
}

/// `GET /dead/confirm?do=&code=&product=`: the confirmation step of an
/// action on everything matching the filter.
pub async fn confirm(Viewer(session): Viewer, Query(filter): Query<Filter>) -> PageResult {
    let (verb, what) = match filter.action.as_str() {
        "retry-all" => ("Retry", "requeue"),
        "purge-all" => ("Purge", "delete for good"),
        _ => return Ok(Redirect::to("/dead").into_response()),
    };
    Ok(html_response(
        StatusCode::OK,
        confirm_page(&session, &filter, verb, what),
    ))
}

fn confirm_page(session: &Session, filter: &Filter, verb: &str, what: &str) -> maud::Markup {
    let body = html! {
        p { "This will " (what) " every dead letter matching: " strong { (describe(filter)) } "." }
        form method="post" action="/dead/action" {
            (csrf_field(session))
            (filter_fields(filter))
            input type="hidden" name="confirm" value="yes";
            button type="submit" name="do" value=(filter.action) { (verb) " them all" }
            " " a href={ "/dead?code=" (encode(&filter.code)) "&product=" (encode(&filter.product)) } { "Back" }
        }
    };
    layout(&format!("{verb} all matching?"), Some(session), body)
}

/// `POST /dead/action`: `one=<job id>`, or `do=retry` with `job=<id>`…,
/// or `do=retry-all` / `do=purge-all` (with `confirm=yes`, else the
/// confirmation page); full token only.
pub async fn action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> PageResult {
    checked_post(
        &state,
        &headers,
        &fields,
        Some("retry or purge dead letters"),
    )?;
    let filter = Filter {
        code: field(&fields, "code").unwrap_or_default().to_owned(),
        product: field(&fields, "product").unwrap_or_default().to_owned(),
        done: String::new(),
        action: field(&fields, "do").unwrap_or_default().to_owned(),
    };
    let product = filter.product()?;
    let parse = |text: &str| {
        text.parse::<JobId>()
            .map_err(|e| ServeError::Invalid(format!("{e}: reload the page and try again")))
    };
    let ids: Vec<JobId> = if let Some(one) = field(&fields, "one") {
        vec![parse(one)?]
    } else {
        match filter.action.as_str() {
            "retry" => fields
                .iter()
                .filter(|(k, _)| k == "job")
                .map(|(_, v)| parse(v))
                .collect::<Result<_, _>>()?,
            "retry-all" | "purge-all" if field(&fields, "confirm") != Some("yes") => {
                return Ok(Redirect::to(&format!(
                    "/dead/confirm?do={}&code={}&product={}",
                    encode(&filter.action),
                    encode(&filter.code),
                    encode(&filter.product)
                ))
                .into_response());
            }
            "retry-all" if filter.code().is_none() => {
                let page = crate::dead::retry_all_pages(&state.store, product).await?;
                let done = format!("{} requeued, {} skipped", page.requeued, page.skipped);
                return Ok(Redirect::to(&filter.query(&done)).into_response());
            }
            "retry-all" => matching(&state.store, &filter, product, WALKED)
                .await?
                .iter()
                .map(|job| job.id)
                .collect(),
            "purge-all" if filter.code().is_some() => {
                return Err(ServeError::Invalid(
                    "purging by FlinksCode is not supported: clear the code filter to purge every dead letter of a product, or retry them instead".into(),
                )
                .into());
            }
            "purge-all" => {
                let purged =
                    crate::dead::purge(&state.store, std::time::Duration::ZERO, product).await?;
                return Ok(Redirect::to(&filter.query(&format!("{purged} purged"))).into_response());
            }
            _ => {
                return Err(ServeError::Invalid(
                    "select dead letters first, or use a retry button".into(),
                )
                .into());
            }
        }
    };
    let (mut requeued, mut skipped) = (0, 0);
    for chunk in ids.chunks(PAGE) {
        let (r, s) = state.store.retry_dead(chunk).await?;
        requeued += r;
        skipped += s;
    }
    let done = format!("{requeued} requeued, {skipped} skipped");
    Ok(Redirect::to(&filter.query(&done)).into_response())
}
