//! GetAccountsSummary: accounts with balances and categories. POST once,
//! then `GET …/GetAccountsSummaryAsync/{RequestId}` while it answers 202.

use super::{Call, Host, Method, OnPending, Part, ProductSpec, Shape, Stage};

pub(super) const SPEC: ProductSpec = ProductSpec {
    name: "accounts-summary",
    about: "accounts with balances (GetAccountsSummary, then GET …Async while pending)",
    authorize_host: Host::Banking,
    stages: &[Stage {
        first: Call {
            name: "GetAccountsSummary",
            method: Method::Post,
            host: Host::Banking,
            path: &[
                Part::Text("BankingServices"),
                Part::Text("GetAccountsSummary"),
            ],
            body: &[("RequestId", Part::RequestId)],
        },
        on_pending: OnPending::Then(Call {
            name: "GetAccountsSummaryAsync",
            method: Method::Get,
            host: Host::Banking,
            path: &[
                Part::Text("BankingServices"),
                Part::Text("GetAccountsSummaryAsync"),
                Part::RequestId,
            ],
            body: &[],
        }),
        payload: ("Accounts", Shape::Array),
    }],
};
