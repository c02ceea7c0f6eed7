//! Attributes (Enrich): `GetAllAttributes` is computed from the accounts of
//! the session, so it may run only once GetAccountsDetail answered 200 in
//! the same session: two stages. The job's payload is the attributes card;
//! the accounts stage's payload is checked and dropped.

use super::{Call, Host, Method, OnPending, Part, ProductSpec, Shape, Stage, accounts_detail};

pub(super) const SPEC: ProductSpec = ProductSpec {
    name: "attributes",
    about: "every attribute of the login's card (GetAccountsDetail, then GetAllAttributes in the same session)",
    authorize_host: Host::Banking,
    stages: &[
        accounts_detail::STAGE,
        Stage {
            first: Call {
                name: "GetAllAttributes",
                method: Method::Get,
                host: Host::Banking,
                path: &[
                    Part::Text("insight"),
                    Part::Text("login"),
                    Part::LoginId,
                    Part::Text("attributes"),
                    Part::RequestId,
                    Part::Text("GetAllAttributes"),
                ],
                body: &[],
            },
            on_pending: OnPending::Repeat,
            payload: ("Card", Shape::Object),
        },
    ],
};
