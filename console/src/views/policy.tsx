export function PolicyView() { return <h1>Policy</h1>; }
