#pragma once
// The index's B-tree blocks of one server worker thread, kept in memory in front of Xapian's
// reads. Xapian (glass) reads every block with pread(2) into its own buffer, and a search on
// the bulk archive reads 100-170 blocks of 8 KiB (the same ones, request after request: the
// upper levels of each table and the lists of the asked terms). Served from the page cache
// each costs a system call and a copy: a quarter to a third of serve's CPU per search
// (README, "Web access"). From here it is a hash lookup and a copy in user space.
//
// How it sits in front of Xapian: this library defines pread() (and close()); libxapian's
// calls bind to them, as an executable's definitions come first in the dynamic linker's
// lookup. On a thread that has not turned the cache on, pread() is the system call and
// nothing else; on one that has, only full, aligned 8 KiB reads of Xapian table files
// (*.glass) are cached.
//
// What keeps a cached block right:
// - A block belongs to an open file descriptor: its key is (descriptor, the descriptor's
//   generation, block number). close() moves the descriptor's generation on, so a number the
//   kernel hands out again never finds the blocks of the file it named before (a database
//   opened for one document read and closed again, as Archive::document does). (A dup2()
//   onto a cached descriptor would not be seen; nothing in the process does that.)
// - A block of a table is the same for as long as the thread's database stays at one
//   revision (glass writes a new revision into free blocks; a reader at the old one reads the
//   old ones, or is told DatabaseModifiedError). A block number of one revision may hold
//   other data in a later one. Xapian (1.4, glass) closes and opens its table files again
//   when it moves to a new revision, so the descriptors' generations alone keep the states
//   apart (AReaderFollowingAWriterReadsOnlyWholeCommits fails without both of these); not
//   to depend on that, the thread's database moves to a new revision only through reopen()
//   below, which reads past the cache while Xapian reopens and empties the cache when the
//   revision changed, and a newly opened database is preceded by forget().
#include <xapian.h>

#include <cstddef>
#include <cstdint>

namespace mv::query::blocks {

constexpr std::size_t k_block_size = 8192;  // glass's default, and the archive's

// Turns the calling thread's cache on with room for `bytes` (rounded down to whole blocks;
// 0 turns it off and frees it). Calling it again with the same size keeps what is cached.
void enable_for_this_thread(std::size_t bytes);

// Forgets every block cached by the calling thread. Before the thread opens a database anew.
void forget();

// db.reopen() for a thread whose cache is on: true when the database may now be at another
// revision, and then nothing of the old one is left in the cache.
bool reopen(Xapian::Database& db);

struct Stats {
    std::uint64_t hits = 0;    // reads answered from the cache
    std::uint64_t misses = 0;  // cacheable reads that went to the file (then cached)
    std::size_t blocks = 0;    // blocks held now
    std::size_t capacity = 0;  // blocks it can hold
};
// The calling thread's counts since its cache was turned on.
Stats stats();

}  // namespace mv::query::blocks
