#pragma once
// How the flash executor runs the pairs of a layout: the execution paths and the pair counts of
// each, from the layout alone (the same plan the executor follows, so the cost model and the
// executor agree).
//
//   Whole tiles  a kept tile's full block_q x block_k rectangle, K/V read in place (v1's only
//                path): Full tiles always, Partial tiles whose keys are mostly used.
//   Key runs     a Partial tile narrowed to the run of key columns any of its rows keeps
//                (window and slash edges that cross tile boundaries start anywhere).
//   Gather       a Partial tile's kept key columns (sinks, global tokens, summary columns, 16-key
//                blocks) copied into a packed K/V panel shared with other tiles of the row and
//                run through the same kernel, masked where rows differ; a tile whose rows
//                keep a few scattered keys each (no shared columns) runs its kept pairs one by
//                one instead (row-level pairs, Auto only), counted with the gathered pairs.
//   Diagonals    diagonals o = p - j that the pattern keeps whole (residue-class rules:
//                strided, dilated, short bands), run 16 queries x 16 keys at one offset per
//                vector step from transposed K/V; the tiles then keep only what the diagonals
//                do not hold, so no pair is computed twice.
//   Classes      sparse diagonals (steps >= 2) in residue-class order: queries and keys of one
//                class s apart become a dense or banded block run by the tile kernel (the
//                Sparse Transformer's reordering), folded into O and LSE like the diagonals.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace spattn {

enum class ExecutionPath {
  Auto,       // per tile and per query-tile row, the path the cost model finds cheapest
  Tiles,      // every kept tile whole (v1's executor)
  Runs,       // Partial tiles narrowed to their key run; no gather, no diagonals
  Gather,     // Partial tiles gathered; no diagonals
  Diagonals,  // diagonals wherever the pattern has a usable cover, on the diagonal kernels
              // (single vectors, residue tracks); the rest as in Auto
  Classes,    // as Diagonals, with the sparse diagonals run as residue classes wherever their
              // offsets allow it
};

// "auto", "tiles", "runs", "gather", "diagonals", "classes".
std::string_view execution_path_name(ExecutionPath p);
// The names above, in that order (the sweep axis's allowed values).
std::vector<std::string> execution_path_name_list();
// The names above, comma separated, for help texts and errors.
std::string execution_path_names();
// The path of a name; none when it names no path.
std::optional<ExecutionPath> find_execution_path(std::string_view name);
// Parses a name; throws UsageError naming the value and the allowed names.
ExecutionPath parse_execution_path(std::string_view name);

// Pairs each path computes (query rows x keys evaluated, masked ones included), for one head
// layout, one batch and one query head; the cost model scales them.
struct PathPairs {
  std::int64_t whole = 0;          // whole tiles
  std::int64_t run = 0;            // narrowed key runs
  std::int64_t gather = 0;         // gathered key columns
  std::int64_t diagonal = 0;       // diagonal path: query lanes x offsets (or class keys) evaluated
  std::int64_t skipped_tiles = 0;  // kept tiles left with nothing once diagonals ran
  std::int64_t diagonal_rows = 0;  // query-tile rows that use the diagonal path
  std::int64_t total() const { return whole + run + gather + diagonal; }
  PathPairs& operator+=(const PathPairs& o);
  PathPairs scaled(std::int64_t copies) const;  // every count times `copies` (overflow-checked)
};

}  // namespace spattn
