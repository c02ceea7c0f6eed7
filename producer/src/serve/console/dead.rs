//! Dead letters (failed and timed-out jobs): filter by FlinksCode and
//! product; retry or purge one, a selection, or every one matching the
//! filter. Every action goes through a confirmation page first (a plain
//! form: no JavaScript needed).

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
    /// The action a form asks for (see `Action`).
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
                    button type="submit" name="do" value=(Action::Retry.as_str()) { "Retry selected…" }
                    button type="submit" name="do" value=(Action::Purge.as_str()) { "Purge selected…" }
                    button type="submit" name="do" value=(Action::RetryAll.as_str()) { "Retry all matching…" }
                    button type="submit" name="do" value=(Action::PurgeAll.as_str()) { "Purge all matching…" }
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
                            @if full {
                                td class="row-actions" {
                                    button type="submit" name="retry-one" value=(job.id.to_string()) { "Retry…" }
                                    button type="submit" name="purge-one" value=(job.id.to_string()) { "Purge…" }
                                }
                            }
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

/// What a dead-letter form asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    /// Requeue the selected dead letters.
    Retry,
    /// Delete the selected dead letters for good.
    Purge,
    /// Requeue every dead letter matching the filter.
    RetryAll,
    /// Delete every dead letter matching the filter.
    PurgeAll,
}

impl Action {
    const ALL: [Action; 4] = [
        Action::Retry,
        Action::Purge,
        Action::RetryAll,
        Action::PurgeAll,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Action::Retry => "retry",
            Action::Purge => "purge",
            Action::RetryAll => "retry-all",
            Action::PurgeAll => "purge-all",
        }
    }

    fn parse(text: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == text)
    }

    fn verb(self) -> &'static str {
        match self {
            Action::Retry | Action::RetryAll => "Retry",
            Action::Purge | Action::PurgeAll => "Purge",
        }
    }
}

fn describe(filter: &Filter) -> String {
    let code = filter.code().unwrap_or_else(|| "any code".into());
    let product = Some(filter.product.trim())
        .filter(|p| !p.is_empty())
        .unwrap_or("every product");
    format!("{code}, {product}")
}

/// The confirmation page: what the action will do, the same form again
/// with `confirm=yes`, and a way back.
async fn confirm_page(
    store: &Store,
    session: &Session,
    filter: &Filter,
    action: Action,
    ids: &[JobId],
) -> Result<maud::Markup, ServeError> {
    let what = match action {
        Action::Retry | Action::RetryAll => "requeue as fresh runs",
        Action::Purge | Action::PurgeAll => "delete for good (job, error and history)",
    };
    // the selected jobs by login, so the operator sees what they picked
    let selected = store.jobs(&ids[..ids.len().min(SHOWN)]).await?;
    let back = format!(
        "/dead?code={}&product={}",
        encode(&filter.code),
        encode(&filter.product)
    );
    let body = html! {
        @if matches!(action, Action::RetryAll | Action::PurgeAll) {
            p { "This will " (what) " every dead letter matching: " strong { (describe(filter)) } "." }
        } @else {
            p { "This will " (what) " " (ids.len()) " dead letter" @if ids.len() != 1 { "s" } ":" }
            ul {
                @for job in &selected {
                    li { code { (job.login.to_string()) } " · " (job.product.as_str())
                        @if let Some(error) = &job.error { " · " (error.code) } }
                }
            }
        }
        form method="post" action="/dead/action" {
            (csrf_field(session))
            (filter_fields(filter))
            input type="hidden" name="do" value=(action.as_str());
            @for id in ids { input type="hidden" name="job" value=(id.to_string()); }
            button type="submit" name="confirm" value="yes" {
                (action.verb()) @if matches!(action, Action::RetryAll | Action::PurgeAll) { " them all" }
                @else { " " (ids.len()) }
            }
            " " a href=(back) { "Back" }
        }
    };
    Ok(layout(&format!("{}?", action.verb()), Some(session), body))
}

/// `POST /dead/action`: `retry-one=<id>` or `purge-one=<id>` (a row's
/// buttons), or `do=retry|purge` with `job=<id>`… (the selection), or
/// `do=retry-all|purge-all` (the filter); full token only. Without
/// `confirm=yes` it answers the confirmation page and changes nothing.
pub async fn action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> PageResult {
    let session = checked_post(
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
    let (action, ids) = if let Some(one) = field(&fields, "retry-one") {
        (Action::Retry, vec![parse(one)?])
    } else if let Some(one) = field(&fields, "purge-one") {
        (Action::Purge, vec![parse(one)?])
    } else {
        let action = Action::parse(&filter.action).ok_or_else(|| {
            ServeError::Invalid("unknown action: use the buttons of the dead-letter page".into())
        })?;
        let ids: Vec<JobId> = fields
            .iter()
            .filter(|(k, _)| k == "job")
            .map(|(_, v)| parse(v))
            .collect::<Result<_, _>>()?;
        (action, ids)
    };
    if matches!(action, Action::Retry | Action::Purge) && ids.is_empty() {
        return Err(ServeError::Invalid(
            "no dead letter selected: tick some first, or use a row's buttons".into(),
        )
        .into());
    }
    if field(&fields, "confirm") != Some("yes") {
        return Ok(html_response(
            StatusCode::OK,
            confirm_page(&state.store, &session, &filter, action, &ids).await?,
        ));
    }
    let done = match action {
        Action::Retry => retry(&state.store, &ids).await?,
        Action::Purge => purge(&state.store, &ids).await?,
        Action::RetryAll if filter.code().is_none() => {
            let page = crate::dead::retry_all_pages(&state.store, product).await?;
            format!("{} requeued, {} skipped", page.requeued, page.skipped)
        }
        Action::PurgeAll if filter.code().is_none() => {
            let purged =
                crate::dead::purge(&state.store, std::time::Duration::ZERO, product).await?;
            format!("{purged} purged")
        }
        Action::RetryAll | Action::PurgeAll => {
            let ids: Vec<JobId> = matching(&state.store, &filter, product, WALKED)
                .await?
                .iter()
                .map(|job| job.id)
                .collect();
            if action == Action::RetryAll {
                retry(&state.store, &ids).await?
            } else {
                purge(&state.store, &ids).await?
            }
        }
    };
    Ok(Redirect::to(&filter.query(&done)).into_response())
}

async fn retry(store: &Store, ids: &[JobId]) -> Result<String, ServeError> {
    let (mut requeued, mut skipped) = (0, 0);
    for chunk in ids.chunks(PAGE) {
        let (r, s) = store.retry_dead(chunk).await?;
        requeued += r;
        skipped += s;
    }
    Ok(format!("{requeued} requeued, {skipped} skipped"))
}

async fn purge(store: &Store, ids: &[JobId]) -> Result<String, ServeError> {
    let (mut purged, mut skipped) = (0, 0);
    for chunk in ids.chunks(PAGE) {
        let (r, s) = store.purge_dead(chunk).await?;
        purged += r;
        skipped += s;
    }
    Ok(format!("{purged} purged, {skipped} skipped"))
}
