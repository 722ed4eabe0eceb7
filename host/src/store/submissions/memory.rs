//! What a thread that ran submits remembers between them for the duplicate guard: the prompts it has read (which never
//! change once written) and, per scope, the live rows it last read at some version of the scope. No SQL here:
//! [`super::guard`] decides when an entry may be used.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::domain::rules::dedup::SIMILARITY_WINDOW;

/// What the guard compares of a submission; none of it changes once the row is written.
pub(super) struct SubmittedPrompt {
    pub normalized: String,
    pub hash: String,
    pub resource_keys: Vec<String>,
    pub created_at: i64,
}

/// A live row as the indexes give it: its submission's id and rowid, then its operation's id, thread, turn and
/// effective status.
pub(super) type LiveKey = (String, i64, String, Option<String>, Option<String>, String);

/// A position `(created_at, rowid)` of a submission in its scope.
pub(super) type Position = (i64, i64);

/// A position before every submission: the window of a scope that holds fewer submissions than it spans.
pub(super) const START_OF_TIME: Position = (i64::MIN, i64::MIN);

/// A scope's live keys (shared with this thread's view of it) and the start of its window.
pub(super) type ScopeRows = (Rc<Vec<LiveKey>>, Position);

/// How many [`SubmittedPrompt`]s one thread keeps; past it the map starts over.
pub(super) const SEEN_PROMPTS: usize = 2_048;
/// How many bytes of prompt text one thread keeps (prompts may be pasted logs or plans); past it the map starts
/// over.
pub(super) const SEEN_BYTES: usize = 2 << 20;

/// Submissions this thread has read, by submission id (random, never reused, unlike a rowid), and the bytes of
/// text they hold. Grows by rows read inside a transaction and by rows this thread inserted: an entry is the row
/// as committed, or a row whose transaction rolled back, whose id is then never seen again.
#[derive(Default)]
pub(super) struct Seen {
    pub prompts: HashMap<String, Rc<SubmittedPrompt>>,
    pub bytes: usize,
}

/// A scope's live rows and recent positions as this thread read them on a committed snapshot at `version`.
///
/// Versions only grow, and every change to what the guard reads of a scope bumps it (V13's triggers), so a view
/// at the scope's current version is the scope as it is. A view is only ever kept from a committed snapshot or
/// advanced past this thread's own insert; the latter holds only once that insert is seen committed (`pending`):
/// a rolled-back insert's version number may be reached again by other processes' writes.
struct ScopeView {
    version: i64,
    /// Shared with the submit that reads them; an advance copies them only while that submit still holds them.
    keys: Rc<Vec<LiveKey>>,
    /// The scope's [`SIMILARITY_WINDOW`] most recent positions (any status), oldest first.
    recent: Vec<Position>,
    /// `(rowid, submission id)` of this thread's insert the view was advanced past, until it is seen committed.
    pending: Option<(i64, String)>,
}

/// How many scopes one thread keeps a view of; past it the map starts over. An agent fleet usually submits into a
/// handful of projects at a time.
const SCOPE_VIEWS: usize = 8;

thread_local! {
    pub(super) static SEEN: RefCell<Seen> = RefCell::new(Seen::default());
    static VIEWS: RefCell<HashMap<String, ScopeView>> = RefCell::new(HashMap::new());
    /// The database file the memory above is of.
    static DATABASE: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Makes this thread's memory that of the database at `path`, forgetting it if it was another's. Scopes and
/// versions are only meaningful within one database, and a submit's insert may run on any thread that holds the
/// writer connection (its own thread, or a caller's for a point write), so a thread could serve two stores.
pub(super) fn for_database(path: &str) {
    DATABASE.with(|database| {
        let mut database = database.borrow_mut();
        if *database != path {
            SEEN.with(|seen| *seen.borrow_mut() = Seen::default());
            VIEWS.with(|views| views.borrow_mut().clear());
            path.clone_into(&mut database);
        }
    });
}

/// The prompt of `submission_id`, if this thread has it.
pub(super) fn seen(submission_id: &str) -> Option<Rc<SubmittedPrompt>> {
    SEEN.with(|seen| seen.borrow().prompts.get(submission_id).cloned())
}

/// Keeps `prompt` in this thread's cache, within its bounds.
pub(super) fn remember(submission_id: &str, prompt: Rc<SubmittedPrompt>) {
    let bytes = prompt.normalized.len() + submission_id.len();
    SEEN.with(|seen| {
        let mut seen = seen.borrow_mut();
        if seen.prompts.len() >= SEEN_PROMPTS || seen.bytes + bytes > SEEN_BYTES {
            *seen = Seen::default();
        }
        if bytes <= SEEN_BYTES {
            seen.bytes += bytes;
            seen.prompts.insert(submission_id.to_string(), prompt);
        }
    });
}

/// The oldest position in the scope's window (`recent`, oldest first), or the start of time while the scope holds
/// fewer submissions than the window.
pub(super) fn window_start(recent: &[Position]) -> Position {
    match recent.first() {
        Some(oldest) if recent.len() >= SIMILARITY_WINDOW => *oldest,
        _ => START_OF_TIME,
    }
}

/// Whether this thread has a view of `scope` at `version`: `None` if not, else the insert it still waits to see
/// committed, if any.
pub(super) fn view_at(scope: &str, version: i64) -> Option<Option<(i64, String)>> {
    VIEWS.with(|views| {
        views
            .borrow()
            .get(scope)
            .filter(|view| view.version == version)
            .map(|view| view.pending.clone())
    })
}

/// Settles the view's pending insert: seen committed, the view stands; else it goes.
pub(super) fn settle_view(scope: &str, committed: bool) {
    VIEWS.with(|views| {
        let mut views = views.borrow_mut();
        if !committed {
            views.remove(scope);
        } else if let Some(view) = views.get_mut(scope) {
            view.pending = None;
        }
    });
}

/// The live keys and window start of this thread's view of `scope`.
pub(super) fn view_rows(scope: &str) -> Option<ScopeRows> {
    VIEWS.with(|views| {
        views
            .borrow()
            .get(scope)
            .map(|view| (Rc::clone(&view.keys), window_start(&view.recent)))
    })
}

/// Keeps `keys` and `recent` as this thread's view of `scope` at `version` (read on a committed snapshot).
pub(super) fn keep_view(scope: &str, version: i64, keys: Rc<Vec<LiveKey>>, recent: Vec<Position>) {
    VIEWS.with(|views| {
        let mut views = views.borrow_mut();
        if views.len() >= SCOPE_VIEWS && !views.contains_key(scope) {
            views.clear();
        }
        views.insert(
            scope.to_string(),
            ScopeView {
                version,
                keys,
                recent,
                pending: None,
            },
        );
    });
}

/// Drops this thread's view of `scope`.
pub(super) fn forget_view(scope: &str) {
    VIEWS.with(|views| views.borrow_mut().remove(scope));
}

/// Whether this thread's view of `scope` is at `version` with nothing pending (what an advance starts from).
pub(super) fn view_settled_at(scope: &str, version: i64) -> bool {
    view_at(scope, version).is_some_and(|pending| pending.is_none())
}

/// Advances the view of `scope` past this thread's own insert of `key` at `position`, to `version`, pending until
/// the insert is seen committed; at `limit` keys the view goes instead (the scope leaves the live path).
pub(super) fn advance_view(
    scope: &str,
    version: i64,
    key: LiveKey,
    position: Position,
    limit: usize,
) {
    VIEWS.with(|views| {
        let mut views = views.borrow_mut();
        let Some(view) = views.get_mut(scope) else {
            return;
        };
        if view.keys.len() >= limit {
            views.remove(scope);
            return;
        }
        let pending = (key.1, key.0.clone());
        Rc::make_mut(&mut view.keys).push(key);
        let at = view.recent.partition_point(|p| *p < position);
        view.recent.insert(at, position);
        if view.recent.len() > SIMILARITY_WINDOW {
            view.recent.remove(0);
        }
        view.version = version;
        view.pending = Some(pending);
    });
}
