/** A column list ("id, status, ...") qualified with a table alias ("a.id, a.status, ..."), for statements that read several tables. */
export function qualified(columns: string, alias: string): string {
  return columns
    .split(', ')
    .map((column) => `${alias}.${column}`)
    .join(', ');
}
