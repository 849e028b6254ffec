export function MapView() { return <h1>Fleet map</h1>; }
