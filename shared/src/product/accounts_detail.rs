//! GetAccountsDetail: accounts, holders and transactions. POST once, then
//! `GET …/GetAccountsDetailAsync/{RequestId}` while it answers 202.

use super::{Call, Host, Method, OnPending, Part, ProductSpec, Shape, Stage};

/// The stage, shared with the attributes product (its first stage).
pub(super) const STAGE: Stage = Stage {
    first: Call {
        name: "GetAccountsDetail",
        method: Method::Post,
        host: Host::Banking,
        path: &[
            Part::Text("BankingServices"),
            Part::Text("GetAccountsDetail"),
        ],
        body: &[("RequestId", Part::RequestId)],
    },
    on_pending: OnPending::Then(Call {
        name: "GetAccountsDetailAsync",
        method: Method::Get,
        host: Host::Banking,
        path: &[
            Part::Text("BankingServices"),
            Part::Text("GetAccountsDetailAsync"),
            Part::RequestId,
        ],
        body: &[],
    }),
    payload: ("Accounts", Shape::Array),
};

pub(super) const SPEC: ProductSpec = ProductSpec {
    name: "accounts-detail",
    about: "accounts, holders and transactions (GetAccountsDetail, then GET …Async while pending)",
    authorize_host: Host::Banking,
    stages: &[STAGE],
};
