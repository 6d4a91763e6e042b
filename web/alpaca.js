// First look at an Alpaca JSON file in the page, so a broken upload is reported at
// once, record by record. The C reader (lab_set_data) has the last word.

const MAX_LISTED = 25;

/**
 * Checks text as [{instruction, input?, output}]. Returns {records, errors}; errors
 * are strings naming the record (1-based) and field.
 */
export function checkAlpaca(text, label = 'file') {
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    return { records: 0, errors: [`${label}: not valid JSON (${e.message})`] };
  }
  if (!Array.isArray(doc)) {
    return { records: 0, errors: [`${label}: expected a JSON array of {instruction, input, output} records`] };
  }
  if (doc.length === 0) return { records: 0, errors: [`${label}: the array is empty`] };
  const errors = [];
  let bad = 0;
  doc.forEach((rec, i) => {
    const where = `${label}: record ${i + 1}`;
    const problems = [];
    if (rec === null || typeof rec !== 'object' || Array.isArray(rec)) {
      problems.push('is not an object');
    } else {
      if (typeof rec.instruction !== 'string') problems.push(`"instruction" is ${rec.instruction === undefined ? 'missing' : 'not a string'}`);
      else if (!rec.instruction.trim()) problems.push('"instruction" is empty');
      if (rec.input !== undefined && rec.input !== null && typeof rec.input !== 'string') problems.push('"input" is not a string');
      if (typeof rec.output !== 'string') problems.push(`"output" is ${rec.output === undefined ? 'missing' : 'not a string'}`);
    }
    if (problems.length) {
      bad++;
      if (errors.length < MAX_LISTED) errors.push(`${where}: ${problems.join(', ')}`);
    }
  });
  if (bad > errors.length) errors.push(`${label}: … and ${bad - errors.length} more bad records`);
  return { records: doc.length, errors, doc };
}
