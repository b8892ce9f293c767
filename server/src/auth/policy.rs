//! Who may read what: one place for the read rules (writes use [`Caller::require`]). Plain
//! functions over facts the caller looked up, so that each rule is tested on its own.

use mykey_core::api::AccountKind;
use mykey_core::{Problem, ProblemKind};

use super::{Caller, Role};

/// May `caller` read resident `resident`'s data, whose home municipality is `home`? The
/// resident, the operator and the home municipality. A store's or terminal's key alone never
/// reads a resident's points: a store sees what the resident confirmed in its checkout.
pub fn may_read_resident(caller: &Caller, resident: i64, home: Option<i64>) -> bool {
    match caller.role {
        Role::Operator => true,
        Role::Resident => caller.subject == resident,
        Role::Municipality => home == Some(caller.subject),
        Role::Partner | Role::Mirror | Role::Terminal | Role::Store => false,
    }
}

/// May `caller` read an account of `kind`, owned by `owner`, in `municipality`'s currency
/// (reserved points: the resident's home)? Its owner, its municipality and the operator.
pub fn may_read_account(caller: &Caller, kind: AccountKind, owner: i64, municipality: i64) -> bool {
    match caller.role {
        Role::Operator => true,
        Role::Municipality => municipality == caller.subject,
        Role::Resident => kind.is_resident() && owner == caller.subject,
        Role::Partner => kind == AccountKind::Clearing && owner == caller.subject,
        Role::Store | Role::Terminal => kind == AccountKind::Receivable && owner == caller.subject,
        Role::Mirror => false,
    }
}

/// The settlement lines `caller` may read, as the (partner, municipality) filter asked for:
/// the operator any; a partner its own; a municipality its own; nobody else.
pub fn settlement_scope(
    caller: &Caller,
    partner: Option<i64>,
    municipality: Option<i64>,
) -> Result<(Option<i64>, Option<i64>), Problem> {
    match caller.role {
        Role::Operator => Ok((partner, municipality)),
        Role::Partner => {
            caller.require(&[Role::Partner], partner.unwrap_or(caller.subject))?;
            Ok((Some(caller.subject), municipality))
        }
        Role::Municipality => {
            caller.require(&[Role::Municipality], municipality.unwrap_or(caller.subject))?;
            Ok((partner, Some(caller.subject)))
        }
        Role::Resident | Role::Store | Role::Terminal | Role::Mirror => {
            Err(Problem::new(ProblemKind::Forbidden, "settlements are for partners, municipalities and the operator"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn caller(role: Role, subject: i64) -> Caller {
        Caller { role, subject }
    }

    #[test]
    fn residents_are_read_by_themselves_their_home_and_the_operator_only() {
        assert!(may_read_resident(&caller(Role::Resident, 7), 7, Some(1)));
        assert!(!may_read_resident(&caller(Role::Resident, 8), 7, Some(1)));
        assert!(may_read_resident(&caller(Role::Municipality, 1), 7, Some(1)));
        assert!(!may_read_resident(&caller(Role::Municipality, 2), 7, Some(1)));
        assert!(!may_read_resident(&caller(Role::Municipality, 1), 7, None));
        assert!(!may_read_resident(&caller(Role::Partner, 1), 7, Some(1)));
        assert!(may_read_resident(&caller(Role::Operator, 0), 7, None));
        assert!(!may_read_resident(&caller(Role::Store, 3), 7, Some(1)), "a store's key alone reads no balances");
        assert!(!may_read_resident(&caller(Role::Terminal, 3), 7, Some(1)), "nor a terminal's");
    }

    #[test]
    fn accounts_are_read_by_their_owner_and_municipality() {
        assert!(may_read_account(&caller(Role::Partner, 3), AccountKind::Clearing, 3, 0));
        assert!(!may_read_account(&caller(Role::Partner, 3), AccountKind::Municipal, 3, 0));
        assert!(may_read_account(&caller(Role::Store, 5), AccountKind::Receivable, 5, 1));
        assert!(!may_read_account(&caller(Role::Store, 5), AccountKind::Receivable, 6, 1));
        assert!(may_read_account(&caller(Role::Municipality, 1), AccountKind::Treasury, 1, 1));
    }

    #[test]
    fn settlements_are_scoped_to_the_reader() {
        assert_eq!(settlement_scope(&caller(Role::Partner, 3), None, Some(1)).unwrap(), (Some(3), Some(1)));
        assert!(settlement_scope(&caller(Role::Partner, 3), Some(4), None).is_err());
        assert_eq!(settlement_scope(&caller(Role::Municipality, 1), Some(3), None).unwrap(), (Some(3), Some(1)));
        assert!(settlement_scope(&caller(Role::Store, 1), None, None).is_err());
        assert_eq!(settlement_scope(&caller(Role::Operator, 0), None, None).unwrap(), (None, None));
    }
}
