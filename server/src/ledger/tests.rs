//! Unit and property tests of the ledger's rules, in memory.

use super::*;
use mykey_core::api::PostingRequest;
use mykey_core::ProblemKind;
use proptest::prelude::*;
use rust_decimal::Decimal;

const T0: Micros = 1_800_000_000 * SECOND;

struct World {
    l: Ledger,
    residents: Vec<i64>,
    shops: Vec<i64>,
    event: i64,
    partner: i64,
    now: Micros,
    holds: Vec<Uuid>,
    vouchers: Vec<u64>,
}

fn world() -> World {
    let mut l = Ledger::default();
    let mut ch = Changes::default();
    l.add_municipality(&mut ch, 1, "10", "群馬県", "前橋市", "municipality", DEFAULT_EXPIRY_DAYS, T0).unwrap();
    l.add_municipality(&mut ch, 2, "46", "鹿児島県", "大崎町", "municipality", 30, T0).unwrap();
    let partner = l.add_partner(&mut ch, "日本航空株式会社", "JAL", "mileage", "id_linkage", T0);
    let shops = vec![l.add_shop(&mut ch, "A", 1, T0).unwrap(), l.add_shop(&mut ch, "B", 2, T0).unwrap()];
    let event = l.add_event(&mut ch, 1, "walk rally", T0 + 10 * DAY).unwrap();
    let residents = (0..3).map(|_| l.add_resident(&mut ch, 1, T0).unwrap().resident).collect();
    World { l, residents, shops, event, partner, now: T0, holds: Vec::new(), vouchers: Vec::new() }
}

fn d(v: i64) -> Decimal {
    Decimal::from(v)
}

fn grant(w: &mut World, resident: i64, m: i64, amount: i64) -> Result<TransactionReceipt> {
    let r = GrantRequest {
        id: Uuid::new_v4(),
        resident,
        municipality: m,
        event: None,
        amount: d(amount),
        expires_at: None,
        memo: None,
    };
    w.l.grant(&mut Changes::default(), &r, w.now)
}

fn pay(w: &mut World, resident: i64, m: i64, shop: i64, amount: Decimal) -> Result<TransactionReceipt> {
    let r = PaymentRequest { id: Uuid::new_v4(), resident, municipality: m, event: None, shop, amount, memo: None };
    w.l.payment(&mut Changes::default(), &r, w.now)
}

#[test]
fn payment_moves_points_to_the_shop_and_refuses_overdraft() {
    let mut w = world();
    let (r, shop) = (w.residents[0], w.shops[0]);
    grant(&mut w, r, 1, 300).unwrap();
    let receipt = pay(&mut w, r, 1, shop, d(100)).unwrap();
    assert_eq!(receipt.postings[0].balance_after, 200);
    let e = pay(&mut w, r, 1, shop, d(201)).unwrap_err();
    assert!(matches!(e, Refusal::Insufficient { available: 200, wanted: 201, .. }), "{e:?}");
    w.l.check_invariants();
}

fn voucher(w: &mut World, resident: i64, amount: i64, draw: u64) -> (u64, Result<TransactionReceipt>) {
    let number = mykey_core::voucher::VoucherNumber::from_random(draw).get();
    let r = VoucherIssue { id: Uuid::new_v4(), number, resident, municipality: 1, shop: w.shops[0], amount };
    (number, w.l.issue_voucher(&mut Changes::default(), &r, w.now))
}

fn redeem(w: &mut World, number: u64, shop: i64) -> Result<TransactionReceipt> {
    let r = VoucherRedemption { id: Uuid::new_v4(), number, shop };
    w.l.redeem_voucher(&mut Changes::default(), &r, w.now)
}

#[test]
fn a_voucher_is_spent_once_at_a_shop_of_its_municipality() {
    use mykey_core::voucher::VoucherRefusal;
    let mut w = world();
    let r = w.residents[0];
    grant(&mut w, r, 1, 300).unwrap();
    let (number, issued) = voucher(&mut w, r, 120, 1);
    let issued = issued.unwrap();
    assert_eq!(issued.kind, TransactionKind::VoucherIssue);
    assert_eq!(issued.postings[0].balance_after, 180, "the points left the resident's account");
    assert_eq!(
        voucher(&mut w, r, 200, 2).1.unwrap_err(),
        Refusal::Insufficient { account: issued.postings[0].account, available: 180, wanted: 200 }
    );
    assert_eq!(voucher(&mut w, r, 10, 1).1.unwrap_err(), Refusal::VoucherNumberTaken(number), "a number open twice");
    let (here, other) = (w.shops[0], w.shops[1]);
    assert!(matches!(redeem(&mut w, number, other).unwrap_err(), Refusal::VoucherElsewhere { accepts: 2, .. }));
    let paid = redeem(&mut w, number, here).unwrap();
    assert_eq!(paid.kind, TransactionKind::VoucherRedemption);
    assert_eq!(paid.postings[1].amount, 120);
    assert_eq!(redeem(&mut w, number, here).unwrap_err(), Refusal::UnknownVoucher(number), "spent: no longer open");
    w.l.check_invariants();
    // Past its expiry, an open voucher is refused; its points come back, and only once.
    let (late, _) = voucher(&mut w, r, 50, 3);
    let expires_at = w.l.open_voucher(late).unwrap().expires_at;
    w.now = expires_at;
    assert_eq!(redeem(&mut w, late, here).unwrap_err(), Refusal::Voucher(VoucherRefusal::Expired));
    let mut ch = Changes::default();
    assert_eq!(w.l.return_vouchers(&mut ch, w.now), 1);
    assert_eq!(ch.vouchers[&late].state, mykey_core::voucher::VoucherState::Returned);
    assert_eq!(ch.notices.last().unwrap().kind, NoticeKind::VoucherReturned);
    assert_eq!(w.l.return_vouchers(&mut Changes::default(), w.now), 0);
    assert_eq!(w.l.accounts[&r_account(&w, r)].balance, 180, "the unspent 50 are back");
    w.l.check_invariants();
}

#[test]
fn a_voucher_never_outlives_its_points_never_names_its_number_and_is_bounded() {
    let mut w = world();
    let r = w.residents[0];
    // 20 points expiring in 2 days, then 1,000 for long: a voucher taking the 20 first is valid
    // only as long as they are, and none may take points that have already expired.
    let g = GrantRequest {
        id: Uuid::new_v4(),
        resident: r,
        municipality: 1,
        event: None,
        amount: d(20),
        expires_at: Some(micros_to_datetime(w.now + 2 * DAY)),
        memo: None,
    };
    w.l.grant(&mut Changes::default(), &g, w.now).unwrap();
    grant(&mut w, r, 1, 1000).unwrap();
    let (number, issued) = voucher(&mut w, r, 30, 11);
    let issued = issued.unwrap();
    assert_eq!(issued.memo.as_deref(), Some("point voucher"), "the number stays out of the log");
    assert!(!format!("{issued:?}").contains(&number.to_string()));
    assert_eq!(w.l.open_voucher(number).unwrap().expires_at, w.now + 2 * DAY);
    // Points past their expiry, not yet moved to breakage, become no voucher.
    let g = GrantRequest { id: Uuid::new_v4(), expires_at: Some(micros_to_datetime(w.now + DAY)), ..g };
    w.l.grant(&mut Changes::default(), &g, w.now).unwrap();
    w.now += DAY;
    assert!(matches!(voucher(&mut w, r, 5, 12).1.unwrap_err(), Refusal::PointsExpiring(_)));
    w.now -= DAY;
    // At most VOUCHERS_OPEN_PER_RESIDENT open at once.
    for i in 1..VOUCHERS_OPEN_PER_RESIDENT as u64 {
        voucher(&mut w, r, 1, 100 + i).1.unwrap();
    }
    assert_eq!(voucher(&mut w, r, 1, 99).1.unwrap_err(), Refusal::TooManyVouchers(r));
    w.l.check_invariants();
    // Returns are bounded per batch; the next batch takes the rest.
    w.now += 10 * DAY;
    let mut ch = Changes::default();
    assert_eq!(w.l.return_vouchers(&mut ch, w.now), VOUCHERS_OPEN_PER_RESIDENT as i64);
    assert!(ch.transactions.iter().all(|t| t.memo.as_deref() == Some("point voucher")));
    w.l.check_invariants();
}

#[test]
fn a_returned_voucher_gives_back_points_that_expire_when_they_would_have() {
    let mut w = world();
    let r = w.residents[0];
    // Two grants with different lives: 10 points expiring in 5 days, 100 in 50.
    for (amount, days) in [(10, 5), (100, 50)] {
        let g = GrantRequest {
            id: Uuid::new_v4(),
            resident: r,
            municipality: 1,
            event: None,
            amount: d(amount),
            expires_at: Some(micros_to_datetime(w.now + days * DAY)),
            memo: None,
        };
        w.l.grant(&mut Changes::default(), &g, w.now).unwrap();
    }
    let before: Vec<(Micros, i64)> =
        w.l.open_lots(r_account(&w, r)).iter().map(|l| (l.expires_at, l.remaining)).collect();
    let (number, _) = voucher(&mut w, r, 60, 9);
    w.now = w.l.open_voucher(number).unwrap().expires_at;
    w.l.return_vouchers(&mut Changes::default(), w.now);
    let after: Vec<(Micros, i64)> =
        w.l.open_lots(r_account(&w, r)).iter().map(|l| (l.expires_at, l.remaining)).collect();
    // 10 expiring on day 5 and 50 on day 50 came back as such: beside the 50 never taken.
    assert_eq!(after, vec![before[0], (before[1].0, 50), (before[1].0, 50)]);
    w.l.check_invariants();
}

#[test]
fn a_balance_that_would_overflow_is_refused_and_nothing_moves() {
    let mut w = world();
    let (r, shop) = (w.residents[0], w.shops[0]);
    grant(&mut w, r, 1, 500).unwrap();
    // A treasury that granted almost all it can count: the next grant would wrap it around.
    let treasury = w.l.municipalities[&1].treasury;
    w.l.accounts.get_mut(&treasury).unwrap().balance = i64::MIN + 10;
    let e = grant(&mut w, r, 1, 11).unwrap_err();
    assert_eq!(e, Refusal::BalanceOutOfRange(treasury));
    assert_eq!(w.l.accounts[&treasury].balance, i64::MIN + 10, "nothing moved");
    grant(&mut w, r, 1, 10).unwrap();
    // A receivable near the top: a payment into it is refused the same way.
    let receivable = w.l.shops[&shop].receivable;
    w.l.accounts.get_mut(&receivable).unwrap().balance = i64::MAX - 1;
    let e = pay(&mut w, r, 1, shop, d(2)).unwrap_err();
    assert_eq!(e, Refusal::BalanceOutOfRange(receivable));
    assert_eq!(w.l.accounts[&r_account(&w, r)].balance, 510, "the resident keeps the points");
    pay(&mut w, r, 1, shop, d(1)).unwrap();
}

fn r_account(w: &World, resident: i64) -> i64 {
    w.l.accounts.values().find(|a| a.owner == resident && a.kind == AccountKind::Municipal).expect("an account").id
}

#[test]
fn refusals_name_the_problem() {
    let mut w = world();
    let (r, s0, s1) = (w.residents[0], w.shops[0], w.shops[1]);
    grant(&mut w, r, 1, 300).unwrap();
    let kind = |e: Refusal| e.kind();
    assert_eq!(kind(pay(&mut w, r, 1, s0, Decimal::new(15, 1)).unwrap_err()), ProblemKind::FractionalPoints);
    assert_eq!(kind(pay(&mut w, r, 1, s0, d(0)).unwrap_err()), ProblemKind::NonPositiveAmount);
    assert_eq!(kind(pay(&mut w, r, 1, s0, d(-5)).unwrap_err()), ProblemKind::NonPositiveAmount);
    // Points of municipality 1 at a shop of municipality 2.
    assert_eq!(kind(pay(&mut w, r, 1, s1, d(5)).unwrap_err()), ProblemKind::CurrencyMismatch);
    assert_eq!(kind(pay(&mut w, 999, 1, s0, d(5)).unwrap_err()), ProblemKind::UnknownReference);
    let t = TransactionRequest {
        id: Uuid::new_v4(),
        postings: vec![PostingRequest { account: 9999, amount: d(-1) }, PostingRequest { account: 1, amount: d(1) }],
        expires_at: None,
        memo: None,
    };
    assert_eq!(kind(w.l.transaction(&mut Changes::default(), &t, w.now).unwrap_err()), ProblemKind::UnknownAccount);
    // Treasury of 1 into treasury of 2: sums to zero overall, not per currency.
    let (t1, t2) = (w.l.municipality(1).unwrap().treasury, w.l.municipality(2).unwrap().treasury);
    let t = TransactionRequest {
        id: Uuid::new_v4(),
        postings: vec![PostingRequest { account: t1, amount: d(-1) }, PostingRequest { account: t2, amount: d(1) }],
        expires_at: None,
        memo: None,
    };
    assert_eq!(kind(w.l.transaction(&mut Changes::default(), &t, w.now).unwrap_err()), ProblemKind::CurrencyMismatch);
    let t = TransactionRequest {
        id: Uuid::new_v4(),
        postings: vec![PostingRequest { account: t1, amount: d(-1) }, PostingRequest { account: t1, amount: d(2) }],
        expires_at: None,
        memo: None,
    };
    assert_eq!(
        kind(w.l.transaction(&mut Changes::default(), &t, w.now).unwrap_err()),
        ProblemKind::UnbalancedTransaction
    );
    w.l.check_invariants();
}

#[test]
fn a_refund_returns_points_with_a_full_validity_and_ended_event_points_as_municipal_points() {
    let mut w = world();
    let (r, shop, event) = (w.residents[0], w.shops[0], w.event);
    grant(&mut w, r, 1, 300).unwrap();
    pay(&mut w, r, 1, shop, d(200)).unwrap();
    w.now += 100 * DAY;
    let refund = |w: &mut World, event: Option<i64>, points: i64| {
        let posting = RefundPosting {
            id: Uuid::new_v4(),
            of: RefundOf::Checkout,
            refunded: Uuid::new_v4(),
            shop,
            resident: r,
            municipality: 1,
            event,
            points,
        };
        w.l.refund(&mut Changes::default(), &posting, w.now)
    };
    let receipt = refund(&mut w, None, 150).unwrap();
    assert_eq!(receipt.kind, TransactionKind::Refund);
    let municipal = w.l.spending_account(r, 1, None).unwrap().unwrap();
    let lot = w.l.open_lots(municipal).iter().find(|l| l.source == TransactionKind::Refund).unwrap().clone();
    assert_eq!(lot.expires_at, w.now + DEFAULT_EXPIRY_DAYS * DAY, "the full validity from the day of the refund");
    // The walk rally ended on day 10: its points come back as the municipality's.
    refund(&mut w, Some(event), 50).unwrap();
    assert_eq!(w.l.accounts[&municipal].balance, 300);
    assert_eq!(w.l.spending_account(r, 1, Some(event)).unwrap(), None, "no event account was made");
    // Nothing, or a store of another municipality, is refused.
    assert_eq!(refund(&mut w, None, 0).unwrap_err().kind(), ProblemKind::NonPositiveAmount);
    let other = RefundPosting {
        id: Uuid::new_v4(),
        of: RefundOf::Checkout,
        refunded: Uuid::new_v4(),
        shop: w.shops[1],
        resident: r,
        municipality: 1,
        event: None,
        points: 1,
    };
    assert_eq!(w.l.refund(&mut Changes::default(), &other, w.now).unwrap_err().kind(), ProblemKind::CurrencyMismatch);
    w.l.check_invariants();
}

#[test]
fn multi_leg_transactions_are_all_or_nothing() {
    let mut w = world();
    let (a, b) = (w.residents[0], w.residents[1]);
    grant(&mut w, a, 1, 100).unwrap();
    grant(&mut w, b, 1, 10).unwrap();
    let (acc_a, acc_b) = (w.l.municipal_account(a, 1).unwrap(), w.l.municipal_account(b, 1).unwrap());
    let shop = w.l.shop(w.shops[0]).unwrap().receivable;
    let before: Vec<Account> = {
        let mut v: Vec<_> = w.l.accounts().cloned().collect();
        v.sort_by_key(|a| a.id);
        v
    };
    // The first two legs are fine, the third overdraws b: nothing may move.
    let t = TransactionRequest {
        id: Uuid::new_v4(),
        postings: vec![
            PostingRequest { account: acc_a, amount: d(-50) },
            PostingRequest { account: shop, amount: d(70) },
            PostingRequest { account: acc_b, amount: d(-20) },
        ],
        expires_at: None,
        memo: None,
    };
    let e = w.l.transaction(&mut Changes::default(), &t, w.now).unwrap_err();
    assert_eq!(e.kind(), ProblemKind::InsufficientPoints);
    let mut after: Vec<Account> = w.l.accounts().cloned().collect();
    after.sort_by_key(|a| a.id);
    assert_eq!(before, after);
}

#[test]
fn holds_capture_part_release_the_rest_and_resolve_once() {
    let mut w = world();
    let r = w.residents[0];
    grant(&mut w, r, 1, 100).unwrap();
    let h = HoldRequest {
        id: Uuid::new_v4(),
        resident: r,
        municipality: 1,
        event: None,
        shop: w.shops[0],
        amount: d(80),
        timeout_seconds: 60,
    };
    w.l.hold(&mut Changes::default(), &h, w.now).unwrap();
    let acc = w.l.municipal_account(r, 1).unwrap();
    assert_eq!(w.l.account(acc).unwrap().held, 80);
    // Only 20 are available while 80 are held.
    let s0 = w.shops[0];
    assert_eq!(pay(&mut w, r, 1, s0, d(21)).unwrap_err().kind(), ProblemKind::InsufficientPoints);
    let e = w.l.capture(&mut Changes::default(), h.id, Uuid::new_v4(), Some(d(81)), w.now).unwrap_err();
    assert_eq!(e.kind(), ProblemKind::CaptureExceedsHold);
    let c = w.l.capture(&mut Changes::default(), h.id, Uuid::new_v4(), Some(d(30)), w.now).unwrap();
    assert_eq!(c.state, HoldState::Captured);
    let a = w.l.account(acc).unwrap();
    assert_eq!((a.balance, a.held), (70, 0));
    let e = w.l.void(&mut Changes::default(), h.id, w.now).unwrap_err();
    assert_eq!(e.kind(), ProblemKind::HoldNotActive);
    w.l.check_invariants();
}

#[test]
fn holds_expire_at_their_timeout() {
    let mut w = world();
    let r = w.residents[0];
    grant(&mut w, r, 1, 100).unwrap();
    let h = HoldRequest {
        id: Uuid::new_v4(),
        resident: r,
        municipality: 1,
        event: None,
        shop: w.shops[0],
        amount: d(100),
        timeout_seconds: 5,
    };
    w.l.hold(&mut Changes::default(), &h, w.now).unwrap();
    assert_eq!(w.l.expire_holds(&mut Changes::default(), w.now + 4 * SECOND), 0);
    assert_eq!(w.l.expire_holds(&mut Changes::default(), w.now + 5 * SECOND), 1);
    assert_eq!(w.l.find_hold(h.id).unwrap().state, HoldState::Expired);
    let e = w.l.capture(&mut Changes::default(), h.id, Uuid::new_v4(), None, w.now + 6 * SECOND).unwrap_err();
    assert_eq!(e.kind(), ProblemKind::HoldNotActive);
    w.l.check_invariants();
}

#[test]
fn jobs_expire_lots_into_breakage_and_move_reserved_points_home() {
    let mut w = world();
    let r = w.residents[0];
    // Municipality 2 expires its points after 30 days.
    grant(&mut w, r, 2, 40).unwrap();
    let conv = ConversionRequest {
        id: Uuid::new_v4(),
        partner: w.partner,
        resident: r,
        partner_points: d(1000),
        rate: Decimal::new(5, 1),
        memo: None,
    };
    w.l.conversion(&mut Changes::default(), &conv, w.now).unwrap();
    let reserved = w.l.resident(r).unwrap().reserved;
    assert_eq!(w.l.account(reserved).unwrap().balance, 500);

    let mut ch = Changes::default();
    let early = w.l.run_jobs(&mut ch, w.now + 13 * DAY);
    assert_eq!((early.moved_reserved_points, early.expired_points), (0, 0));
    let report = w.l.run_jobs(&mut ch, w.now + 31 * DAY);
    assert_eq!(report.moved_reserved_points, 500);
    assert_eq!(report.expired_points, 40);
    assert_eq!(report.notices_queued, 1);
    assert_eq!(w.l.account(reserved).unwrap().balance, 0);
    let home = w.l.municipal_account(r, 1).unwrap();
    assert_eq!(w.l.account(home).unwrap().balance, 500);
    let breakage = w.l.municipality(2).unwrap().breakage;
    assert_eq!(w.l.account(breakage).unwrap().balance, 40);
    // The partner's clearing account got its reserved points back: it now owes municipality 1.
    let clearing = w.l.partner(w.partner).unwrap().clearing;
    assert_eq!(w.l.account(clearing).unwrap().balance, 0);
    w.l.check_invariants();
}

#[test]
fn expiry_leaves_held_points_alone() {
    let mut w = world();
    let r = w.residents[0];
    let g = GrantRequest {
        id: Uuid::new_v4(),
        resident: r,
        municipality: 2,
        event: None,
        amount: d(40),
        expires_at: Some(micros_to_datetime(w.now + DAY)),
        memo: None,
    };
    w.l.grant(&mut Changes::default(), &g, w.now).unwrap();
    let h = HoldRequest {
        id: Uuid::new_v4(),
        resident: r,
        municipality: 2,
        event: None,
        shop: w.shops[1],
        amount: d(30),
        timeout_seconds: MAX_HOLD_SECONDS,
    };
    w.l.hold(&mut Changes::default(), &h, w.now).unwrap();
    let report = w.l.run_jobs(&mut Changes::default(), w.now + 2 * DAY);
    assert_eq!(report.expired_points, 10);
    w.l.check_invariants();
}

#[derive(Clone, Debug)]
enum Op {
    Grant { who: usize, m: i64, amount: i64, days: i64, event: bool },
    Convert { who: usize, points: i64 },
    Assign { who: usize, m: i64, amount: i64 },
    Pay { who: usize, m: i64, shop: usize, amount: i64, event: bool },
    Hold { who: usize, m: i64, amount: i64, secs: u32 },
    Capture { hold: usize, amount: Option<i64> },
    Void { hold: usize },
    Refund { who: usize, m: i64, amount: i64, event: bool },
    Adjust { a: i64, b: i64, amount: i64 },
    Advance { hours: i64 },
    Jobs,
    Voucher { who: usize, m: i64, amount: i64, draw: u64 },
    Redeem { voucher: usize, shop: usize },
    Due,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 1..=2i64, 1..500i64, 1..60i64, any::<bool>()).prop_map(|(who, m, amount, days, event)| Op::Grant {
            who,
            m,
            amount,
            days,
            event
        }),
        (0..3usize, 1..800i64).prop_map(|(who, points)| Op::Convert { who, points }),
        (0..3usize, 1..=2i64, 1..400i64).prop_map(|(who, m, amount)| Op::Assign { who, m, amount }),
        (0..3usize, 1..=2i64, 0..2usize, 1..400i64, any::<bool>()).prop_map(|(who, m, shop, amount, event)| Op::Pay {
            who,
            m,
            shop,
            amount,
            event
        }),
        (0..3usize, 1..=2i64, 1..300i64, 1..200_000u32).prop_map(|(who, m, amount, secs)| Op::Hold {
            who,
            m,
            amount,
            secs
        }),
        (0..8usize, proptest::option::of(1..300i64)).prop_map(|(hold, amount)| Op::Capture { hold, amount }),
        (0..8usize).prop_map(|hold| Op::Void { hold }),
        (0..3usize, 1..=2i64, 1..300i64, any::<bool>()).prop_map(|(who, m, amount, event)| Op::Refund {
            who,
            m,
            amount,
            event
        }),
        (1..40i64, 1..40i64, 1..300i64).prop_map(|(a, b, amount)| Op::Adjust { a, b, amount }),
        (0..24 * 20i64).prop_map(|hours| Op::Advance { hours }),
        Just(Op::Jobs),
        (0..3usize, 1..=2i64, 1..300i64, any::<u64>()).prop_map(|(who, m, amount, draw)| Op::Voucher {
            who,
            m,
            amount,
            draw
        }),
        (0..8usize, 0..2usize).prop_map(|(voucher, shop)| Op::Redeem { voucher, shop }),
        Just(Op::Due),
    ]
}

fn apply(w: &mut World, op: &Op) -> std::result::Result<(), Refusal> {
    let mut ch = Changes::default();
    let now = w.now;
    match op.clone() {
        Op::Grant { who, m, amount, days, event } => {
            let event = (event && m == 1).then_some(w.event);
            let r = GrantRequest {
                id: Uuid::new_v4(),
                resident: w.residents[who],
                municipality: m,
                event,
                amount: d(amount),
                expires_at: Some(micros_to_datetime(now + days * DAY)),
                memo: None,
            };
            w.l.grant(&mut ch, &r, now).map(drop)
        }
        Op::Convert { who, points } => {
            let r = ConversionRequest {
                id: Uuid::new_v4(),
                partner: w.partner,
                resident: w.residents[who],
                partner_points: d(points),
                rate: d(1),
                memo: None,
            };
            w.l.conversion(&mut ch, &r, now).map(drop)
        }
        Op::Assign { who, m, amount } => {
            let r = AssignmentRequest {
                id: Uuid::new_v4(),
                resident: w.residents[who],
                municipality: m,
                amount: d(amount),
            };
            w.l.assignment(&mut ch, &r, now).map(drop)
        }
        Op::Pay { who, m, shop, amount, event } => {
            let resident = w.residents[who];
            let event = (event && m == 1).then_some(w.event);
            let account = w.l.spending_account(resident, m, event).ok().flatten();
            let before: Vec<Lot> = account.map(|a| w.l.open_lots(a).to_vec()).unwrap_or_default();
            let r = PaymentRequest {
                id: Uuid::new_v4(),
                resident,
                municipality: m,
                event,
                shop: w.shops[shop],
                amount: d(amount),
                memo: None,
            };
            let res = w.l.payment(&mut ch, &r, now).map(drop);
            if res.is_ok() {
                // Expected: the lots expiring first are consumed first.
                let mut expected = before;
                let mut left = amount;
                for lot in expected.iter_mut() {
                    let t = lot.remaining.min(left);
                    lot.remaining -= t;
                    left -= t;
                }
                expected.retain(|l| l.remaining > 0);
                assert_eq!(left, 0);
                assert_eq!(w.l.open_lots(account.unwrap()), expected.as_slice(), "lots consumed in expiry order");
            }
            res
        }
        Op::Hold { who, m, amount, secs } => {
            let shop = w.shops[(m - 1) as usize];
            let r = HoldRequest {
                id: Uuid::new_v4(),
                resident: w.residents[who],
                municipality: m,
                event: None,
                shop,
                amount: d(amount),
                timeout_seconds: secs,
            };
            let res = w.l.hold(&mut ch, &r, now).map(drop);
            if res.is_ok() {
                w.holds.push(r.id);
            }
            res
        }
        Op::Capture { hold, amount } => match w.holds.get(hold).copied() {
            Some(h) => w.l.capture(&mut ch, h, Uuid::new_v4(), amount.map(d), now).map(drop),
            None => Ok(()),
        },
        Op::Void { hold } => match w.holds.get(hold).copied() {
            Some(h) => w.l.void(&mut ch, h, now).map(drop),
            None => Ok(()),
        },
        Op::Refund { who, m, amount, event } => {
            let r = RefundPosting {
                id: Uuid::new_v4(),
                of: RefundOf::Checkout,
                refunded: Uuid::new_v4(),
                shop: w.shops[(m - 1) as usize],
                resident: w.residents[who],
                municipality: m,
                event: (event && m == 1).then_some(w.event),
                points: amount,
            };
            w.l.refund(&mut ch, &r, now).map(drop)
        }
        Op::Adjust { a, b, amount } => {
            let r = TransactionRequest {
                id: Uuid::new_v4(),
                postings: vec![
                    PostingRequest { account: a, amount: d(-amount) },
                    PostingRequest { account: b, amount: d(amount) },
                ],
                expires_at: None,
                memo: None,
            };
            w.l.transaction(&mut ch, &r, now).map(drop)
        }
        Op::Advance { hours } => {
            w.now += hours * 3600 * SECOND;
            Ok(())
        }
        Op::Jobs => {
            w.l.run_jobs(&mut ch, now);
            Ok(())
        }
        Op::Voucher { who, m, amount, draw } => {
            let number = mykey_core::voucher::VoucherNumber::from_random(draw).get();
            let r = VoucherIssue {
                id: Uuid::new_v4(),
                number,
                resident: w.residents[who],
                municipality: m,
                shop: w.shops[(m - 1) as usize],
                amount,
            };
            w.l.issue_voucher(&mut ch, &r, now)?;
            w.vouchers.push(number);
            Ok(())
        }
        Op::Redeem { voucher, shop } => match w.vouchers.get(voucher).copied() {
            Some(number) => {
                let r = VoucherRedemption { id: Uuid::new_v4(), number, shop: w.shops[shop] };
                w.l.redeem_voucher(&mut ch, &r, now).map(drop)
            }
            None => Ok(()),
        },
        Op::Due => {
            w.l.expire_holds(&mut ch, now);
            w.l.return_vouchers(&mut ch, now);
            Ok(())
        }
    }
}

fn state(l: &Ledger) -> Vec<Account> {
    let mut v: Vec<Account> = l.accounts().cloned().collect();
    v.sort_by_key(|a| a.id);
    v
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any sequence of operations keeps every invariant: balances sum to zero per currency,
    /// no resident account negative (holds included), lots cover balances in expiry order;
    /// a refused operation changes no balance.
    #[test]
    fn invariants_hold_under_random_operations(ops in proptest::collection::vec(op(), 1..120)) {
        let mut w = world();
        for op in &ops {
            let before = state(&w.l);
            let res = apply(&mut w, op);
            if let Err(p) = &res {
                let status = p.kind().status();
                prop_assert!(status == 422 || status == 409 || status == 404 || status == 400, "unexpected {p:?}");
                if !matches!(p, Refusal::HoldNotActive { .. }) {
                    prop_assert_eq!(&before, &state(&w.l), "refused {:?} changed balances", op);
                }
            }
            w.l.check_invariants();
        }
    }
}

#[test]
fn every_payment_capture_and_refund_tells_the_resident() {
    let mut w = world();
    let (r, shop) = (w.residents[0], w.shops[0]);
    grant(&mut w, r, 1, 500).unwrap();
    let mut ch = Changes::default();
    let memo = Memo::parse("定期便").unwrap();
    let p = PaymentRequest {
        id: Uuid::new_v4(),
        resident: r,
        municipality: 1,
        event: None,
        shop,
        amount: d(100),
        memo: Some(memo),
    };
    let paid = w.l.payment(&mut ch, &p, w.now).unwrap();
    let h = HoldRequest {
        id: Uuid::new_v4(),
        resident: r,
        municipality: 1,
        event: None,
        shop,
        amount: d(80),
        timeout_seconds: 60,
    };
    w.l.hold(&mut ch, &h, w.now).unwrap();
    w.l.capture(&mut ch, h.id, Uuid::new_v4(), Some(d(30)), w.now).unwrap();
    let back = RefundPosting {
        id: Uuid::new_v4(),
        of: RefundOf::Checkout,
        refunded: Uuid::new_v4(),
        shop,
        resident: r,
        municipality: 1,
        event: None,
        points: 40,
    };
    w.l.refund(&mut ch, &back, w.now).unwrap();
    // A refused payment tells nothing.
    pay(&mut w, r, 1, shop, d(100_000)).unwrap_err();
    let told: Vec<(NoticeKind, i64, serde_json::Value)> =
        ch.notices.iter().map(|n| (n.kind, n.resident, serde_json::from_str(&n.payload).unwrap())).collect();
    assert_eq!(told.len(), 3, "{told:?}");
    let kinds: Vec<NoticeKind> = told.iter().map(|t| t.0).collect();
    assert_eq!(kinds, [NoticeKind::Payment, NoticeKind::Payment, NoticeKind::Refund]);
    assert!(told.iter().all(|t| t.1 == r && t.2["shop"] == shop && t.2["shop_name"] == "A"));
    assert_eq!(told.iter().map(|t| t.2["points"].as_i64().unwrap()).collect::<Vec<_>>(), [100, 30, 40]);
    assert_eq!(
        (told[0].2["memo"].as_str(), told[0].2["transaction"].as_str()),
        (Some("定期便"), Some(paid.id.to_string().as_str()))
    );
    // Ids follow on from each other, as the mailer reads them.
    assert!(ch.notices.windows(2).all(|p| p[1].id == p[0].id + 1));
    for k in kinds {
        assert_eq!(NoticeKind::parse(k.as_str()), Some(k));
    }
}
