//! Property: replaying any earlier applied request with its id returns the first answer and
//! changes nothing; reusing an id with another body is a conflict and changes nothing; what is stored
//! rebuilds into a ledger whose invariants hold. Runs on the database the run selects.

use mykey_core::api::{CaptureRequest, ConversionRequest, GrantRequest, HoldRequest, PaymentRequest, VoidRequest};
use mykey_server::engine::{Change, ChangeResult, Engine, EngineError, Request};
use mykey_server::ledger::{Ledger, VoucherIssue, VoucherRedemption};
use mykey_server::testing::TestDb;
use mykey_server::LedgerService;
use proptest::prelude::*;
use rust_decimal::Decimal;
use uuid::Uuid;

#[derive(Clone, Debug)]
enum Op {
    Grant { who: i64, amount: i64 },
    Convert { who: i64, points: i64 },
    Pay { who: i64, amount: i64 },
    Hold { who: i64, amount: i64 },
    Capture { hold: usize, amount: Option<i64> },
    Void { hold: usize },
    Voucher { who: i64, amount: i64, draw: u64 },
    Redeem { voucher: usize },
    StoredAnswer { index: usize },
    ReplayChanged { index: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1..=3i64, 1..300i64).prop_map(|(who, amount)| Op::Grant { who, amount }),
        (1..=3i64, 1..300i64).prop_map(|(who, points)| Op::Convert { who, points }),
        (1..=3i64, 1..200i64).prop_map(|(who, amount)| Op::Pay { who, amount }),
        (1..=3i64, 1..200i64).prop_map(|(who, amount)| Op::Hold { who, amount }),
        (0..6usize, proptest::option::of(1..200i64)).prop_map(|(hold, amount)| Op::Capture { hold, amount }),
        (0..6usize).prop_map(|hold| Op::Void { hold }),
        (1..=3i64, 1..200i64, any::<u64>()).prop_map(|(who, amount, draw)| Op::Voucher { who, amount, draw }),
        (0..6usize).prop_map(|voucher| Op::Redeem { voucher }),
        (0..40usize).prop_map(|index| Op::StoredAnswer { index }),
        (0..40usize).prop_map(|index| Op::ReplayChanged { index }),
    ]
}

fn d(v: i64) -> Decimal {
    Decimal::from(v)
}

/// A different body under the same id.
fn changed(r: &Request) -> Request {
    let mut r = r.clone();
    match &mut r {
        Request::Payment(p) => p.amount += Decimal::ONE,
        Request::Grant(g) => g.amount += Decimal::ONE,
        Request::Conversion(c) => c.partner_points += Decimal::ONE,
        Request::Hold(h) => h.amount += Decimal::ONE,
        Request::Capture { body, .. } => body.amount = Some(body.amount.unwrap_or(Decimal::ZERO) + Decimal::ONE),
        Request::Void { hold, .. } => *hold = Uuid::new_v4(),
        Request::Assignment(a) => a.amount += Decimal::ONE,
        Request::Transaction(t) => t.memo = Some(mykey_core::text::Memo::parse("changed").unwrap()),
        Request::Refund(f) => f.points += 1,
        Request::VoucherIssue(v) => v.amount += 1,
        Request::VoucherRedemption(v) => v.number += 10,
    }
    r
}

async fn setup(engine: &Engine) -> (i64, i64) {
    mykey_server::testing::add_municipality_and_residents(engine, 3).await;
    let ChangeResult::Id(partner) = engine
        .apply(Change::Partner {
            name: "p".into(),
            name_en: "p".into(),
            point_kind: "p".into(),
            exchange_method: "coupon_url".into(),
        })
        .await
        .unwrap()
    else {
        panic!()
    };
    let ChangeResult::Id(shop) = engine.apply(Change::Shop { name: "s".into(), municipality: 1 }).await.unwrap() else {
        panic!()
    };
    (partner, shop)
}

async fn run(ops: Vec<Op>) {
    let db = TestDb::new().await.unwrap();
    let ledger = LedgerService::open(&db.url).await.unwrap();
    let engine = ledger.engine.clone();
    let (partner, shop) = setup(&engine).await;
    let mut sent: Vec<(Request, mykey_server::engine::Done)> = Vec::new();
    let mut holds: Vec<Uuid> = Vec::new();
    let mut vouchers: Vec<u64> = Vec::new();
    for op in ops {
        let request = match op {
            Op::Grant { who, amount } => Request::Grant(GrantRequest {
                id: Uuid::new_v4(),
                resident: who,
                municipality: 1,
                event: None,
                amount: d(amount),
                expires_at: None,
                memo: None,
            }),
            Op::Convert { who, points } => Request::Conversion(ConversionRequest {
                id: Uuid::new_v4(),
                partner,
                resident: who,
                partner_points: d(points),
                rate: d(1),
                memo: None,
            }),
            Op::Pay { who, amount } => Request::Payment(PaymentRequest {
                id: Uuid::new_v4(),
                resident: who,
                municipality: 1,
                event: None,
                shop,
                amount: d(amount),
                memo: None,
            }),
            Op::Hold { who, amount } => {
                let id = Uuid::new_v4();
                holds.push(id);
                Request::Hold(HoldRequest {
                    id,
                    resident: who,
                    municipality: 1,
                    event: None,
                    shop,
                    amount: d(amount),
                    timeout_seconds: 600,
                })
            }
            Op::Capture { hold, amount } => match holds.get(hold) {
                Some(h) => {
                    Request::Capture { hold: *h, body: CaptureRequest { id: Uuid::new_v4(), amount: amount.map(d) } }
                }
                None => continue,
            },
            Op::Voucher { who, amount, draw } => {
                let number = mykey_core::voucher::VoucherNumber::from_random(draw).get();
                vouchers.push(number);
                Request::VoucherIssue(VoucherIssue {
                    id: Uuid::new_v4(),
                    number,
                    resident: who,
                    municipality: 1,
                    shop,
                    amount,
                })
            }
            Op::Redeem { voucher } => match vouchers.get(voucher) {
                Some(&number) => Request::VoucherRedemption(VoucherRedemption { id: Uuid::new_v4(), number, shop }),
                None => continue,
            },
            Op::Void { hold } => match holds.get(hold) {
                Some(h) => Request::Void { hold: *h, body: VoidRequest { id: Uuid::new_v4() } },
                None => continue,
            },
            Op::StoredAnswer { index } | Op::ReplayChanged { index } => {
                let Some((request, first)) = sent.get(index % sent.len().max(1)).cloned() else { continue };
                let before = engine.tables().await.unwrap().all_balances().await.unwrap();
                let again = if matches!(op, Op::StoredAnswer { .. }) {
                    let a = engine.execute(request, "p").await;
                    assert_eq!(a, Ok(first), "a replay returns the first answer");
                    a
                } else {
                    let a = engine.execute(changed(&request), "p").await;
                    assert_eq!(a, Err(EngineError::Conflict(request.id())), "another body under a used id");
                    a
                };
                assert!(!again.is_err_and(|e| e.is_transient()));
                assert_eq!(
                    before,
                    engine.tables().await.unwrap().all_balances().await.unwrap(),
                    "a replay changed balances"
                );
                continue;
            }
        };
        // Refusals are not kept (the same id is judged afresh); applied requests are.
        match engine.execute(request.clone(), "p").await {
            Ok(done) => sent.push((request, done)),
            Err(e) => assert!(matches!(e, EngineError::Refused(_)), "{e:?}"),
        }
    }
    engine.check_invariants().await;
    engine.tables().await.unwrap();
    // What is stored rebuilds into a ledger that keeps every invariant.
    let stored = Ledger::from_snapshot(engine.store().load_snapshot().await.unwrap());
    stored.check_invariants();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn replays_change_nothing(ops in proptest::collection::vec(op(), 1..40)) {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap().block_on(run(ops));
    }
}
